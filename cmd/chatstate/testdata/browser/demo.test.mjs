// The demo chat and the operator's dashboard in Debian's chromium, driven
// by playwright-core. The Go test (cmd/chatstate/browser_test.go) starts
// the server in development mode and passes BASE_URL, API_KEY,
// ARTIFACTS_DIR and CHROMIUM. The steps run in order and share two users,
// alice and bob, each in a browser context of its own. Nothing waits a
// fixed time: every check polls the page until a deadline.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { chromium } from "playwright-core";

const base = process.env.BASE_URL.replace(/\/?$/, "/");
const apiKey = process.env.API_KEY;
const artifacts = process.env.ARTIFACTS_DIR;
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const HISTORY = 130; // more than the server's cache of 100 recent messages
const STOP_DEADLINE = 2500; // ms for typing:stop to clear the indicator

let browser, alice, bob, ctxA, ctxB, conversationId;
const errors = [];

async function openPage(ctx, name) {
  const page = await ctx.newPage();
  page.setDefaultTimeout(10000);
  page.on("pageerror", (e) => errors.push(`${name}: ${e.message}`));
  page.on("console", (m) => {
    // The offline step makes chromium log its refused reconnects.
    if (m.type() === "error" && !m.text().includes("ERR_INTERNET_DISCONNECTED")) errors.push(`${name}: ${m.text()}`);
  });
  return page;
}

async function shot(page, name, viewport, fullPage = false) {
  await page.setViewportSize(viewport);
  await page.screenshot({ path: join(artifacts, `${name}-${viewport.width}x${viewport.height}.png`), fullPage });
}

// until polls fn until it returns true; anything else it returns is
// shown when the deadline passes.
async function until(what, fn, timeout = 10000) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last === true) return;
    if (Date.now() > end) throw new Error(`${what}: not within ${timeout} ms (last: ${last})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const message = (page, text) => page.locator("#messages li.msg").filter({ has: page.locator(".text", { hasText: new RegExp(`^${text.replace(/[()]/g, "\\$&")}$`) }) });
const receiptOf = (page, text) => message(page, text).locator(".receipt").getAttribute("data-receipt");
const countOf = (page, text) => message(page, text).count();

async function signIn(page, name) {
  await page.goto(base);
  await page.locator("#signin-name").fill(name);
  await page.locator("#signin-form button[type=submit]").click();
  await page.locator("#me-name", { hasText: name }).waitFor();
  await page.locator("#conn").waitFor({ state: "hidden" });
}

async function send(page, text) {
  await page.locator("#compose").fill(text);
  await page.locator("#compose").press("Enter");
  await until(`${text} acknowledged`, async () => (await receiptOf(page, text)) !== "pending" || "pending");
}

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM,
    headless: true,
    // Without the background-networking flags chromium dials Google's
    // services, which this closed network refuses.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  ctxA = await browser.newContext({ viewport: DESKTOP });
  ctxB = await browser.newContext({ viewport: DESKTOP });
  alice = await openPage(ctxA, "alice");
  bob = await openPage(ctxB, "bob");
});

after(async () => {
  await browser?.close();
  assert.deepEqual(errors, [], "no script errors on any page");
});

test("sign in as any user name: the server mints the token", async () => {
  await alice.goto(base);
  await alice.locator("#signin-name").waitFor();
  await shot(alice, "demo-signin", PHONE);
  await shot(alice, "demo-signin", DESKTOP);
  await signIn(alice, "alice");
  await signIn(bob, "bob");
});

test("starting a conversation befriends both; a message appears in the other page", async () => {
  await alice.locator("#start-name").fill("bob");
  await alice.locator("#start-form button").click();
  await alice.locator("#thread-title", { hasText: "bob" }).waitFor();
  // bob's page learns of the conversation and of its new friend.
  const conv = bob.locator("#conv-list button.conv", { hasText: "alice" });
  await conv.waitFor();
  conversationId = await conv.getAttribute("data-conversation-id");
  await bob.locator('#friend-list [data-friend="alice"][data-presence="online"]').waitFor();
  await alice.locator('#friend-list [data-friend="bob"][data-presence="online"]').waitFor();

  await send(alice, "hello bob");
  await conv.locator(".badge", { hasText: "1" }).waitFor();
  await conv.locator(".preview", { hasText: "hello bob" }).waitFor();
  // Stored, not read: one tick.
  assert.equal(await receiptOf(alice, "hello bob"), "sent");
});

test("✓✓ appears once the other page reads", async () => {
  await bob.locator("#conv-list button.conv", { hasText: "alice" }).click();
  await message(bob, "hello bob").waitFor();
  await until("alice sees ✓✓", async () => (await receiptOf(alice, "hello bob")) === "read" || (await receiptOf(alice, "hello bob")));
  assert.equal(await message(alice, "hello bob").locator(".receipt").textContent(), "✓✓");
  await bob.locator("#conv-list button.conv .badge").waitFor({ state: "detached" });
});

test("the typing indicator shows and clears", async () => {
  await bob.locator("#compose").pressSequentially("I am wri");
  await alice.locator("#typing", { hasText: "bob is typing…" }).waitFor();
  await alice.locator("#conv-list .typing-inline").waitFor();
  // Emptying the field stops typing at once: the deadline is shorter than
  // the page's 5 s idle stop and the server's 10 s typing TTL.
  await bob.locator("#compose").fill("");
  await until("alice's indicator cleared", async () => (await alice.locator("#typing").textContent()) === "" || (await alice.locator("#typing").textContent()), STOP_DEADLINE);
  await send(bob, "hi alice");
  await message(alice, "hi alice").waitFor();
});

test("an edit and a reaction show on both pages", async () => {
  const mine = message(alice, "hello bob");
  await mine.hover();
  await mine.locator('[data-action="edit"]').click();
  await alice.locator("#editing").waitFor();
  await alice.locator("#compose").fill("hello bob (edited)");
  await alice.locator("#compose").press("Enter");
  for (const page of [alice, bob]) {
    await message(page, "hello bob (edited)").locator(".edited").waitFor();
  }
  const theirs = message(bob, "hello bob (edited)");
  await theirs.hover();
  await theirs.locator('.actions [data-emoji="👍"]').click();
  for (const page of [alice, bob]) {
    await message(page, "hello bob (edited)").locator(".chip", { hasText: "👍 1" }).waitFor();
  }
  await send(alice, "oops, wrong chat");
  const oops = message(alice, "oops, wrong chat");
  await oops.hover();
  await oops.locator('[data-action="delete"]').click();
  for (const page of [alice, bob]) {
    await page.locator("#messages li.msg .text.deleted").waitFor();
    assert.equal(await countOf(page, "oops, wrong chat"), 0);
  }
});

test("screenshots of the conversation", async () => {
  await send(bob, "Looks good 👍");
  await message(alice, "Looks good 👍").waitFor();
  await bob.locator("#compose").pressSequentially("One more");
  await alice.locator("#typing", { hasText: "bob is typing…" }).waitFor();
  for (const page of [alice, bob]) await page.mouse.move(0, 0); // no hover toolbar
  await shot(alice, "demo-chat", DESKTOP);
  await shot(alice, "demo-chat", PHONE);
  await shot(bob, "demo-chat-bob", DESKTOP);
  await alice.locator("#back").click();
  await alice.locator("#conv-list button.conv .typing-inline").waitFor();
  await shot(alice, "demo-list", PHONE);
  await alice.setViewportSize(DESKTOP);
  await alice.locator("#conv-list button.conv", { hasText: "bob" }).click();
  await bob.locator("#compose").fill("");
  await until("alice's indicator cleared", async () => (await alice.locator("#typing").textContent()) === "" || "still typing", STOP_DEADLINE);
});

test("history loads on scroll, from the cache and then the store", async () => {
  // A backend sends as alice (the API key has no per-user rate limit).
  for (let i = 1; i <= HISTORY; i++) {
    const res = await fetch(`${base}v1/conversations/${conversationId}/messages`, {
      method: "POST",
      headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" },
      body: JSON.stringify({ senderId: "alice", clientMessageId: `history-${i}`, content: `history ${String(i).padStart(3, "0")}` }),
    });
    assert.equal(res.status, 201, await res.text());
  }
  await message(alice, `history ${HISTORY}`).waitFor();
  // A fresh load of bob's page (the same tab keeps its sign-in) draws the
  // latest page of the conversation only.
  await bob.reload();
  await bob.locator("#conn").waitFor({ state: "hidden" });
  await bob.locator("#conv-list button.conv", { hasText: "alice" }).click();
  await message(bob, `history ${HISTORY}`).waitFor();
  assert.equal(await countOf(bob, "history 001"), 0, "the first message is not loaded before scrolling");
  const list = bob.locator("#messages");
  await list.hover();
  await until("history 001 loaded by scrolling up", async () => {
    if ((await countOf(bob, "history 001")) === 1) return true;
    await bob.mouse.wheel(0, -4000);
    return `${await bob.locator("#messages li.msg").count()} messages drawn`;
  }, 20000);
  await bob.locator("#history-state", { hasText: "Start of the conversation" }).waitFor();
  const texts = await bob.locator("#messages li.msg .text").allTextContents();
  const history = texts.filter((t) => t.startsWith("history "));
  assert.equal(history.length, HISTORY, "each history message once");
  assert.deepEqual(history, [...history].sort(), "in order");
  assert.deepEqual(texts.slice(0, 4), ["hello bob (edited)", "hi alice", "message deleted", "Looks good 👍"]);
});

test("a reconnect loses and duplicates nothing", async () => {
  await ctxB.setOffline(true);
  await bob.locator("#conn").waitFor({ state: "visible" });
  await send(alice, "while you were away 1");
  await send(alice, "while you were away 2");
  assert.equal(await countOf(bob, "while you were away 1"), 0);
  await ctxB.setOffline(false);
  await bob.locator("#conn").waitFor({ state: "hidden", timeout: 15000 });
  await message(bob, "while you were away 2").waitFor();
  for (const text of ["while you were away 1", "while you were away 2", "hi alice", `history ${HISTORY}`]) {
    assert.equal(await countOf(bob, text), 1, `${text} drawn once`);
  }
  await until("alice sees ✓✓ after bob's sync", async () => (await receiptOf(alice, "while you were away 2")) === "read" || "sent");
  await send(bob, "back again");
  await message(alice, "back again").waitFor();
});

test("the dashboard shows both connections", async () => {
  const admin = await openPage(ctxA, "admin");
  await admin.goto(`${base}admin`);
  await admin.locator("#login-key").fill(apiKey);
  await admin.locator("#login-form button").click();
  await admin.locator("#k-connections", { hasText: /^2$/ }).waitFor();
  await admin.locator("#nodes td[data-connections='2']").waitFor();
  for (const u of ["alice", "bob"]) await admin.locator(`#online [data-user="${u}"]`).waitFor();
  await admin.locator('#online [data-user="bob"]').click();
  await admin.locator("#sessions tr[data-device]").first().waitFor();
  await admin.locator("#events td code", { hasText: "new_device" }).first().waitFor();
  await admin.locator("#cleanup").click();
  await admin.locator("#cleanup-result", { hasText: "sessions: removed" }).waitFor();
  // The chart's rates come from successive /metrics scrapes: messages
  // sent while it is open show.
  for (let i = 1; i <= 20; i++) await send(alice, `load ${i}`);
  await until("messages/s above zero", async () => {
    const v = await admin.locator("#k-mps").textContent();
    return Number(v) > 0 || v;
  });
  const points = Number(await admin.locator("#chart").getAttribute("data-points"));
  // ... and back to zero at the next scrape, as a new point of the chart.
  await until("messages/s back to zero", async () => {
    const v = await admin.locator("#k-mps").textContent();
    const n = Number(await admin.locator("#chart").getAttribute("data-points"));
    return (Number(v) === 0 && n > points) || `${v} with ${n} points`;
  });
  await shot(admin, "admin", DESKTOP, true);
  await shot(admin, "admin", PHONE, true);
  await admin.close();
});

test("a presence dot changes when a page closes", async () => {
  await bob.close();
  await alice.locator('#friend-list [data-friend="bob"][data-presence="offline"]').waitFor();
  await alice.locator("#friend-list .friend-seen", { hasText: "last seen" }).waitFor();
  await alice.locator("#thread-sub", { hasText: "last seen" }).waitFor();
});

test("an operator revokes a session from the dashboard", async () => {
  const phone = await openPage(ctxB, "bob's phone");
  await signIn(phone, "bob");
  await alice.locator('#friend-list [data-friend="bob"][data-presence="online"]').waitFor();
  const admin = await openPage(ctxA, "admin");
  await admin.goto(`${base}admin`); // the tab is new: the key is asked again
  await admin.locator("#login-key").fill(apiKey);
  await admin.locator("#login-form button").click();
  await admin.locator("#user-id").fill("bob");
  await admin.locator("#user-form button").click();
  const rows = admin.locator("#sessions tr[data-device]");
  await rows.first().waitFor();
  assert.equal(await rows.count(), 1, "one session: the closed page's ended");
  await rows.first().locator("button[data-revoke]").click();
  await phone.locator("#signin-error", { hasText: "revoked" }).waitFor();
  await alice.locator('#friend-list [data-friend="bob"][data-presence="offline"]').waitFor();
  await admin.locator("#sessions td", { hasText: "no sessions" }).waitFor();
  await admin.locator("#events td code", { hasText: "session_revoked" }).waitFor();
});
