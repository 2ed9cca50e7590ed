//! Which destination addresses deliveries may reach: the address classifier of the SSRF guard
//! and the `WEBHOOKD_ALLOW_PRIVATE` policy. Pure functions; the outbound client applies them to
//! every resolved address before it connects.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;

/// `WEBHOOKD_ALLOW_PRIVATE`: which non-public addresses deliveries may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowPrivate {
    /// Every address (local mode's default).
    All,
    /// Public addresses only.
    None,
    /// Public addresses and these networks.
    Networks(Vec<IpNet>),
}

/// The error of parsing an `AllowPrivate` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not `all`, `none` or a comma-separated list of CIDRs (e.g. 10.0.0.0/8,::1/128)")]
pub struct ParseAllowPrivateError(pub String);

impl FromStr for AllowPrivate {
    type Err = ParseAllowPrivateError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "all" => Ok(Self::All),
            "none" | "" => Ok(Self::None),
            list => list
                .split(',')
                .map(str::trim)
                .filter(|part| !part.is_empty())
                .map(|part| {
                    part.parse::<IpNet>()
                        .or_else(|_| part.parse::<IpAddr>().map(IpNet::from))
                        .map_err(|_| ParseAllowPrivateError(text.to_owned()))
                })
                .collect::<Result<_, _>>()
                .map(Self::Networks),
        }
    }
}

impl fmt::Display for AllowPrivate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("all"),
            Self::None => f.write_str("none"),
            Self::Networks(networks) => {
                let parts: Vec<String> = networks.iter().map(ToString::to_string).collect();
                f.write_str(&parts.join(","))
            }
        }
    }
}

impl AllowPrivate {
    /// Whether the policy lets deliveries reach `ip`, whatever its class. A listed IPv4 network
    /// also matches the IPv6 forms that embed one of its addresses (`::ffff:10.0.0.5` is in
    /// `10.0.0.0/8`), and a listed IPv4-mapped IPv6 network matches the plain IPv4 addresses.
    pub fn permits(&self, ip: IpAddr) -> bool {
        match self {
            Self::All => true,
            Self::None => false,
            Self::Networks(networks) => equivalent_forms(ip)
                .into_iter()
                .flatten()
                .any(|form| networks.iter().any(|network| network.contains(&form))),
        }
    }
}

/// What kind of destination an address is. Only [`AddressClass::Public`] is reachable unless
/// `WEBHOOKD_ALLOW_PRIVATE` says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressClass {
    /// Globally routable unicast.
    Public,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918: `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`.
    Private,
    /// RFC 6598 shared address space, `100.64.0.0/10` (carrier-grade NAT, some cloud VPCs).
    SharedCgnat,
    /// `169.254.0.0/16` (where cloud metadata services answer) and `fe80::/10`.
    LinkLocal,
    /// `0.0.0.0` and `::`, which reach the local host when connected to.
    Unspecified,
    /// `255.255.255.255`.
    Broadcast,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// `fc00::/7`.
    UniqueLocal,
    /// Every other special-purpose range: `0.0.0.0/8`, `192.0.0.0/24`, `192.88.99.0/24`,
    /// benchmarking `198.18.0.0/15`, `240.0.0.0/4`; in IPv6 `2001::/23` (Teredo, benchmarking,
    /// ORCHID, …), the local-use NAT64 prefix, and everything outside global unicast `2000::/3`.
    Reserved,
}

impl AddressClass {
    pub fn is_public(self) -> bool {
        self == Self::Public
    }

    /// The words that complete "destination address 10.0.0.5 is …".
    pub fn description(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Loopback => "loopback",
            Self::Private => "private (RFC 1918)",
            Self::SharedCgnat => "in the shared carrier-grade NAT range (100.64.0.0/10, RFC 6598)",
            Self::LinkLocal => "link-local (where cloud metadata services answer)",
            Self::Unspecified => "unspecified (it reaches the local host)",
            Self::Broadcast => "the broadcast address",
            Self::Multicast => "multicast",
            Self::Documentation => "reserved for documentation",
            Self::UniqueLocal => "unique-local (fc00::/7, RFC 4193)",
            Self::Reserved => "in a reserved, special-purpose range",
        }
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// Classifies a destination address. IPv6 forms that carry an IPv4 address to an IPv4 host
/// (see [`embedded_ipv4`]) are classified by that IPv4 address, so `::ffff:127.0.0.1` is
/// loopback and `64:ff9b::a9fe:a9fe` is link-local.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(ip) => classify_v4(ip),
        IpAddr::V6(ip) => classify_v6(ip),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    use AddressClass::*;
    if ip.is_unspecified() {
        return Unspecified;
    }
    if ip.is_broadcast() {
        return Broadcast;
    }
    match ip.octets() {
        [0, ..] => Reserved,
        [10, ..] => Private,
        [100, 64..=127, ..] => SharedCgnat,
        [127, ..] => Loopback,
        [169, 254, ..] => LinkLocal,
        [172, 16..=31, ..] => Private,
        [192, 0, 0, _] => Reserved,
        [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => Documentation,
        [192, 88, 99, _] => Reserved,
        [192, 168, ..] => Private,
        [198, 18..=19, ..] => Reserved,
        [224..=239, ..] => Multicast,
        [240..=255, ..] => Reserved,
        _ => Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    use AddressClass::*;
    if ip.is_unspecified() {
        return Unspecified;
    }
    if ip.is_loopback() {
        return Loopback;
    }
    if let Some(embedded) = embedded_ipv4(ip) {
        return classify_v4(embedded);
    }
    let segments = ip.segments();
    match segments[0] {
        0xfe80..=0xfebf => LinkLocal,
        0xfc00..=0xfdff => UniqueLocal,
        0xff00..=0xffff => Multicast,
        0x2001 if segments[1] == 0x0db8 => Documentation,
        0x3fff if segments[1] <= 0x0fff => Documentation,
        0x2001 if segments[1] <= 0x01ff => Reserved,
        0x2000..=0x3fff => Public,
        // Outside global unicast: the discard prefix 100::/64, the local-use NAT64 prefix
        // 64:ff9b:1::/48, the old site-local fec0::/10, and unassigned space.
        _ => Reserved,
    }
}

/// The IPv4 address inside an IPv6 address of a form that reaches an IPv4 host: IPv4-mapped
/// `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d` (deprecated; `::` and `::1` excluded), NAT64
/// `64:ff9b::a.b.c.d` (RFC 6052) and 6to4 `2002:AABB:CCDD::/48` (RFC 3056).
pub fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let octets = ip.octets();
    let last_32_bits = Ipv4Addr::new(octets[12], octets[13], octets[14], octets[15]);
    match ip.segments() {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(last_32_bits),
        [0, 0, 0, 0, 0, 0, _, _] if !ip.is_unspecified() && !ip.is_loopback() => Some(last_32_bits),
        [0x2002, ..] => Some(Ipv4Addr::new(octets[2], octets[3], octets[4], octets[5])),
        _ => None,
    }
}

/// `ip` and the other spellings of the same IPv4 destination, for matching listed networks.
fn equivalent_forms(ip: IpAddr) -> [Option<IpAddr>; 2] {
    match ip {
        IpAddr::V4(v4) => [Some(ip), Some(IpAddr::V6(v4.to_ipv6_mapped()))],
        IpAddr::V6(v6) => [Some(ip), embedded_ipv4(v6).map(IpAddr::V4)],
    }
}

/// Decides whether a delivery may connect to `ip`: public addresses always, the others only
/// when `policy` permits them.
pub fn check(ip: IpAddr, policy: &AllowPrivate) -> Result<(), Refusal> {
    let class = classify(ip);
    if class.is_public() || policy.permits(ip) {
        Ok(())
    } else {
        Err(Refusal {
            address: ip,
            class,
            host: None,
        })
    }
}

/// A destination address the SSRF guard refused. Its message is written for the operator who
/// reads it in the attempt record, and says how to allow the address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Refusal {
    pub address: IpAddr,
    pub class: AddressClass,
    /// The host name that resolved to `address`, when the URL named one.
    pub host: Option<String>,
}

impl Refusal {
    /// The same refusal, reported as what `host` resolved to.
    pub fn for_host(self, host: impl Into<String>) -> Self {
        Self {
            host: Some(host.into()),
            ..self
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Some(host) => write!(
                f,
                "destination {host} resolves to {}, which is {}",
                self.address, self.class
            )?,
            None => write!(f, "destination address {} is {}", self.address, self.class)?,
        }
        f.write_str(
            "; set WEBHOOKD_ALLOW_PRIVATE to a CIDR list containing it (or `all`) to allow it",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn networks(list: &str) -> AllowPrivate {
        list.parse().unwrap()
    }

    #[test]
    fn the_address_table() {
        use AddressClass::*;
        let table = [
            ("8.8.8.8", Public),
            ("1.1.1.1", Public),
            ("93.184.216.34", Public),
            ("100.63.255.255", Public),
            ("100.128.0.0", Public),
            ("172.15.255.255", Public),
            ("172.32.0.0", Public),
            ("192.0.3.1", Public),
            ("198.17.255.255", Public),
            ("198.20.0.0", Public),
            ("223.255.255.255", Public),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Reserved),
            ("10.0.0.5", Private),
            ("10.255.255.255", Private),
            ("100.64.0.1", SharedCgnat),
            ("100.127.255.254", SharedCgnat),
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("169.254.169.254", LinkLocal),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.0.0.8", Reserved),
            ("192.0.2.1", Documentation),
            ("192.88.99.1", Reserved),
            ("192.168.1.1", Private),
            ("198.18.0.1", Reserved),
            ("198.19.255.255", Reserved),
            ("198.51.100.7", Documentation),
            ("203.0.113.9", Documentation),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("240.0.0.1", Reserved),
            ("255.255.255.254", Reserved),
            ("255.255.255.255", Broadcast),
            // IPv6.
            ("2606:4700:4700::1111", Public),
            ("2a00:1450:4001:80b::200e", Public),
            ("::", Unspecified),
            ("::1", Loopback),
            ("fe80::1", LinkLocal),
            ("febf:ffff::1", LinkLocal),
            ("fc00::1", UniqueLocal),
            ("fd12:3456:789a::1", UniqueLocal),
            ("ff02::1", Multicast),
            ("2001:db8::1", Documentation),
            ("3fff::1", Documentation),
            ("3fff:1000::1", Public),
            ("2001::1", Reserved),
            ("2001:2::1", Reserved),
            ("2001:200::1", Public),
            ("100::1", Reserved),
            ("fec0::1", Reserved),
            ("64:ff9b:1::1", Reserved),
            ("4000::1", Reserved),
            // IPv6 forms classified by the IPv4 address they carry.
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:10.0.0.5", Private),
            ("::ffff:169.254.169.254", LinkLocal),
            ("::ffff:0.0.0.0", Unspecified),
            ("::ffff:8.8.8.8", Public),
            ("::127.0.0.1", Loopback),
            ("::192.168.0.1", Private),
            ("::0.0.0.2", Reserved),
            ("64:ff9b::10.1.2.3", Private),
            ("64:ff9b::a9fe:a9fe", LinkLocal),
            ("64:ff9b::8.8.4.4", Public),
            ("2002:7f00:1::", Loopback),
            ("2002:a00:5::1", Private),
            ("2002:808:808::1", Public),
        ];
        for (text, class) in table {
            assert_eq!(classify(ip(text)), class, "{text}");
        }
    }

    #[test]
    fn policies_decide_what_is_refused() {
        let cases = [
            ("8.8.8.8", "none", true),
            ("2606:4700:4700::1111", "none", true),
            ("10.0.0.5", "none", false),
            ("10.0.0.5", "all", true),
            ("255.255.255.255", "all", true),
            ("10.0.0.5", "10.0.0.0/8", true),
            ("10.0.0.5", "10.0.0.0/24,192.168.0.0/16", true),
            ("10.0.1.5", "10.0.0.0/24,192.168.0.0/16", false),
            ("::ffff:10.0.0.5", "10.0.0.0/8", true),
            ("64:ff9b::10.0.0.5", "10.0.0.0/8", true),
            ("10.0.0.5", "::ffff:10.0.0.0/104", true),
            ("127.0.0.1", "127.0.0.1", true),
            ("127.0.0.2", "127.0.0.1", false),
            ("::1", "127.0.0.0/8", false),
            ("::1", "::1/128", true),
            ("8.8.8.8", "10.0.0.0/8", true),
        ];
        for (address, policy, allowed) in cases {
            let result = check(ip(address), &networks(policy));
            assert_eq!(
                result.is_ok(),
                allowed,
                "{address} under {policy}: {result:?}"
            );
        }
    }

    #[test]
    fn refusals_tell_the_operator_what_to_do() {
        let refusal = check(ip("10.0.0.5"), &AllowPrivate::None).unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "destination address 10.0.0.5 is private (RFC 1918); set WEBHOOKD_ALLOW_PRIVATE to a \
             CIDR list containing it (or `all`) to allow it"
        );
        let refusal = check(ip("127.0.0.1"), &AllowPrivate::None)
            .unwrap_err()
            .for_host("localhost");
        assert_eq!(
            refusal.to_string(),
            "destination localhost resolves to 127.0.0.1, which is loopback; set \
             WEBHOOKD_ALLOW_PRIVATE to a CIDR list containing it (or `all`) to allow it"
        );
        assert_eq!(refusal.class, AddressClass::Loopback);
    }

    #[test]
    fn the_policy_still_parses_and_prints() {
        assert_eq!(networks("all"), AllowPrivate::All);
        assert_eq!(networks(" none "), AllowPrivate::None);
        assert_eq!(
            networks("10.0.0.0/8, ::1").to_string(),
            "10.0.0.0/8,::1/128"
        );
        assert!("10.0.0.0/33".parse::<AllowPrivate>().is_err());
    }

    /// An IPv4 address inside `network`, from a random host part.
    fn inside(network: Ipv4Addr, prefix: u8, host_bits: u32) -> Ipv4Addr {
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        Ipv4Addr::from((u32::from(network) & mask) | (host_bits & !mask))
    }

    /// The IPv4 address and the IPv6 forms that carry it.
    fn all_forms(v4: Ipv4Addr) -> [IpAddr; 3] {
        let octets = v4.octets();
        let nat64 = Ipv6Addr::new(
            0x64,
            0xff9b,
            0,
            0,
            0,
            0,
            u16::from_be_bytes([octets[0], octets[1]]),
            u16::from_be_bytes([octets[2], octets[3]]),
        );
        [
            IpAddr::V4(v4),
            IpAddr::V6(v4.to_ipv6_mapped()),
            IpAddr::V6(nat64),
        ]
    }

    fn internal_network() -> impl Strategy<Value = (Ipv4Addr, u8)> {
        prop::sample::select(vec![
            (Ipv4Addr::new(10, 0, 0, 0), 8),
            (Ipv4Addr::new(127, 0, 0, 0), 8),
            (Ipv4Addr::new(169, 254, 0, 0), 16),
            (Ipv4Addr::new(172, 16, 0, 0), 12),
            (Ipv4Addr::new(192, 168, 0, 0), 16),
            (Ipv4Addr::new(100, 64, 0, 0), 10),
        ])
    }

    proptest! {
        #[test]
        fn internal_addresses_are_refused_unless_all_are_allowed(
            (network, prefix) in internal_network(),
            host_bits in any::<u32>(),
        ) {
            for address in all_forms(inside(network, prefix, host_bits)) {
                let refusal = check(address, &AllowPrivate::None);
                prop_assert!(refusal.is_err(), "{address} passed");
                prop_assert!(refusal.unwrap_err().to_string().contains("WEBHOOKD_ALLOW_PRIVATE"));
                prop_assert!(check(address, &AllowPrivate::All).is_ok());
            }
        }

        #[test]
        fn ipv6_forms_are_classified_like_the_ipv4_address(raw in any::<u32>()) {
            let v4 = Ipv4Addr::from(raw);
            for address in all_forms(v4) {
                prop_assert_eq!(classify(address), classify_v4(v4), "{}", address);
            }
        }

        #[test]
        fn every_address_of_a_listed_network_is_allowed(
            network in any::<u32>(),
            prefix in 0u8..=32,
            host_bits in any::<u32>(),
        ) {
            let network_address = Ipv4Addr::from(network);
            let listed = IpNet::V4(ipnet::Ipv4Net::new(network_address, prefix).unwrap().trunc());
            let policy = AllowPrivate::Networks(vec![listed]);
            for address in all_forms(inside(network_address, prefix, host_bits)) {
                prop_assert!(check(address, &policy).is_ok(), "{} not in {}", address, listed);
            }
        }

        #[test]
        fn every_ipv6_address_of_a_listed_network_is_allowed(
            network in any::<u128>(),
            prefix in 0u8..=128,
            host_bits in any::<u128>(),
        ) {
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
            let address = Ipv6Addr::from((network & mask) | (host_bits & !mask));
            let listed = IpNet::V6(ipnet::Ipv6Net::new(Ipv6Addr::from(network), prefix).unwrap());
            let policy = AllowPrivate::Networks(vec![listed]);
            prop_assert!(check(IpAddr::V6(address), &policy).is_ok());
        }

        #[test]
        fn only_public_addresses_pass_when_none_are_allowed(raw in any::<u128>()) {
            let address = IpAddr::V6(Ipv6Addr::from(raw));
            match check(address, &AllowPrivate::None) {
                Ok(()) => prop_assert!(classify(address).is_public()),
                Err(refusal) => {
                    prop_assert!(!classify(address).is_public());
                    let message = refusal.to_string();
                    prop_assert!(message.contains(&address.to_string()), "{}", message);
                    prop_assert!(message.contains("WEBHOOKD_ALLOW_PRIVATE"), "{}", message);
                }
            }
        }
    }
}
