//! The `webhookd` binary: everything lives in the library; see `cli::main`.

/// mimalloc rather than the C library's allocator: the hot path allocates and frees many small
/// buffers across threads (requests, JSON, delivery bodies), where glibc's malloc spent about a
/// sixth of the server's CPU in its own bookkeeping.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    webhookd::cli::main()
}
