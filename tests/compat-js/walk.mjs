// A walk through webhookd with the official Svix JavaScript SDK: the main calls of each
// resource, each checked by its effect. Deliveries go to a receiver on loopback and are
// verified with the SDK's own `Webhook` class. Run by crates/webhookd/tests/compat_js.rs:
//
//   WEBHOOKD_URL=http://127.0.0.1:8090 node tests/compat-js/walk.mjs
//
// Exits non-zero, naming the step, on the first thing that is not as it should be.

import assert from "node:assert/strict";
import http from "node:http";
import { Svix, Webhook } from "svix";

const svix = new Svix("testsk_local", { serverUrl: process.env.WEBHOOKD_URL });
const unique = (prefix) => `${prefix}-${Math.random().toString(36).slice(2, 10)}`;

// The receiver: records every request by path, answers 200.
const received = [];
const receiver = http.createServer((request, response) => {
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    received.push({ path: request.url, headers: request.headers, body: Buffer.concat(chunks).toString() });
    response.writeHead(200, { "content-type": "text/plain" });
    response.end("ok");
  });
});
await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
const base = `http://127.0.0.1:${receiver.address().port}`;

async function waitUntil(what, check, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
const requestsTo = (path) => received.filter((request) => request.path === path);

async function step(name, run) {
  try {
    await run();
    console.log(`ok - ${name}`);
  } catch (error) {
    console.error(`not ok - ${name}\n${error.stack ?? error}`);
    receiver.close();
    process.exit(1);
  }
}

let app;
let endpoint;
let message;
const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

await step("application: create, get, list", async () => {
  app = await svix.application.create({ name: "js walk", uid: unique("js") });
  assert.equal((await svix.application.get(app.uid)).id, app.id);
  const list = await svix.application.list({ limit: 250 });
  assert.ok(Array.isArray(list.data));
});

await step("event type: create with an example, get", async () => {
  const name = unique("js.example");
  await svix.eventType.create({
    name,
    description: "an example",
    schemas: { 1: { type: "object", examples: [{ hello: "js" }] } },
    groupName: "walk",
  });
  const read = await svix.eventType.get(name);
  assert.equal(read.groupName, "walk");
  app.exampleType = name;
});

await step("endpoint: create, get secret, send example", async () => {
  endpoint = await svix.endpoint.create(app.id, { url: `${base}/hook`, secret });
  assert.equal((await svix.endpoint.getSecret(app.id, endpoint.id)).key, secret);
  const example = await svix.endpoint.sendExample(app.id, endpoint.id, { eventType: app.exampleType });
  const [request] = await waitUntil("the example", () => requestsTo("/hook").length === 1 && requestsTo("/hook"));
  new Webhook(secret).verify(request.body, request.headers);
  assert.deepEqual(JSON.parse(request.body), { hello: "js" });
  assert.equal(request.headers["webhook-id"], example.id);
});

await step("message: create, get, precheck", async () => {
  message = await svix.message.create(app.id, { eventType: "order.placed", payload: { n: 1 } });
  await waitUntil("the delivery", () => requestsTo("/hook").length === 2);
  const read = await svix.message.get(app.id, message.id, { withContent: true });
  assert.deepEqual(read.payload, { n: 1 });
  assert.equal((await svix.message.precheck(app.id, { eventType: "order.placed" })).active, true);
});

await step("message attempt: list by endpoint with the message embedded", async () => {
  const attempts = await waitUntil("the attempt", async () => {
    const page = await svix.messageAttempt.listByEndpoint(app.id, endpoint.id, { withMsg: true, withContent: true });
    return page.data.find((attempt) => attempt.msgId === message.id && attempt.status === 0) && page.data;
  });
  const attempt = attempts.find((attempt) => attempt.msgId === message.id);
  assert.equal(attempt.response, "ok");
  assert.equal(attempt.msg.id, message.id);
});

await step("endpoint: replay missing to a new endpoint", async () => {
  const late = await svix.endpoint.create(app.id, { url: `${base}/late` });
  const task = await svix.endpoint.replayMissing(app.id, late.id, { since: new Date(Date.now() - 60_000) });
  const finished = await svix.backgroundTask.get(task.id);
  assert.equal(finished.status, "finished");
  assert.equal(finished.data.messagesSent, 2);
  await waitUntil("the replayed messages", () => requestsTo("/late").length === 2);
});

await step("message: expunge content", async () => {
  await svix.message.expungeContent(app.id, message.id);
  const read = await svix.message.get(app.id, message.id, { withContent: true });
  assert.deepEqual(read.payload, {});
});

await step("statistics: usage per application", async () => {
  const task = await svix.statistics.aggregateAppStats({
    since: new Date(Date.now() - 60_000),
    until: new Date(Date.now() + 60_000),
    appIds: [app.id],
  });
  const finished = await svix.backgroundTask.get(task.id);
  assert.equal(finished.data.appStats[0].appId, app.id);
  assert.equal(finished.data.appStats[0].messageDestinations, 4);
});

await step("application: delete", async () => {
  await svix.application.delete(app.id);
});

receiver.close();
console.log("js walk: every step passed");
