"""python-socketio (Debian's python3-socketio 5.x, the sync client) against
two chatstate gateway processes: the Go test TestPythonClient
(cmd/chatstate/python_test.go) starts them and passes their addresses.

Every wait is on an event with a deadline; nothing sleeps."""

import base64
import hashlib
import hmac
import json
import os
import threading
import time
import unittest
import urllib.error
import urllib.request
import uuid

import socketio

A = os.environ["GATEWAY_A"]
B = os.environ["GATEWAY_B"]
SECRET = os.environ["CHATSTATE_JWT_SECRET"].encode()
API_KEY = os.environ["CHATSTATE_API_KEY"]
WAIT = 10.0


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(sub, secret=SECRET):
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    now = int(time.time())
    payload = b64(json.dumps({"sub": sub, "iat": now, "exp": now + 3600}).encode())
    sig = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(sig)}"


def uid(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def api(method, path, body=None):
    req = urllib.request.Request(A + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"content-type": "application/json", "authorization": "Bearer " + API_KEY})
    try:
        with urllib.request.urlopen(req, timeout=WAIT) as res:
            return res.status, json.loads(res.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def conversation(members):
    status, body = api("POST", "/v1/conversations", {"members": members})
    assert status == 201, (status, body)
    return body["id"]


class Client:
    """One socket that records every event it receives."""

    def __init__(self, url, user, device="d", transports=("websocket",), tok=None):
        self.user = user
        self.sio = socketio.Client(reconnection=False)
        self.log = []
        self.cond = threading.Condition()

        @self.sio.on("*")
        def any_event(event, *args):
            with self.cond:
                self.log.append((event, args[0] if args else None))
                self.cond.notify_all()

        self.sio.connect(url, auth={"token": tok or token(user), "deviceId": device},
                         transports=list(transports), wait_timeout=WAIT)

    def transport(self):
        return self.sio.transport()

    def ack(self, event, payload):
        return self.sio.call(event, payload, timeout=WAIT)

    def send(self, conv, content, cmid=None):
        res = self.ack("message:send", {"conversationId": conv, "clientMessageId": cmid or str(uuid.uuid4()),
                                        "content": content})
        assert res["ok"], res
        return res["message"]

    def wait_for(self, event, pred=lambda d: True, timeout=WAIT):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for ev, data in self.log:
                    if ev == event and pred(data):
                        return data
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.user}: no {event} within {timeout}s; got {[e for e, _ in self.log]}")
                self.cond.wait(left)

    def received(self, event, pred=lambda d: True):
        with self.cond:
            return [d for ev, d in self.log if ev == event and pred(d)]

    def close(self):
        self.sio.disconnect()


class PythonClientTest(unittest.TestCase):
    def setUp(self):
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()

    def connect(self, *args, **kw):
        c = Client(*args, **kw)
        self.clients.append(c)
        return c

    def test_messages_cross_nodes_and_transports(self):
        alice, bob = uid("alice"), uid("bob")
        conv = conversation([alice, bob])
        a = self.connect(A, alice, "phone")
        b_poll = self.connect(B, bob, "web", transports=("polling",))
        b_ws = self.connect(A, bob, "phone", transports=("polling", "websocket"))
        self.assertEqual(a.transport(), "websocket")
        self.assertEqual(b_poll.transport(), "polling")

        msg = a.send(conv, "héllo from python ✓")
        self.assertEqual(msg["seq"], 1)
        self.assertEqual(msg["senderId"], alice)
        self.assertEqual(msg["conversationId"], conv)
        self.assertEqual(msg["content"], "héllo from python ✓")
        for s in (b_poll, b_ws):
            got = s.wait_for("message:new", lambda e: e["message"]["id"] == msg["id"])
            self.assertEqual(got["message"], msg)

        reply = b_poll.send(conv, "reply over polling")
        self.assertEqual(reply["seq"], 2)
        a.wait_for("message:new", lambda e: e["message"]["id"] == reply["id"])
        # Barrier: b_ws has the reply, so anything sent before it has arrived.
        b_ws.wait_for("message:new", lambda e: e["message"]["id"] == reply["id"])
        self.assertEqual(len(a.received("message:new", lambda e: e["message"]["id"] == msg["id"])), 0,
                         "the sending socket does not get its own message")
        self.assertEqual(len(b_poll.received("message:new", lambda e: e["message"]["id"] == reply["id"])), 0)
        self.assertEqual(len(b_ws.received("message:new", lambda e: e["message"]["id"] == msg["id"])), 1)

    def test_resend_is_idempotent(self):
        alice, bob = uid("alice"), uid("bob")
        conv = conversation([alice, bob])
        a = self.connect(A, alice)
        b = self.connect(B, bob)
        cmid = str(uuid.uuid4())
        first = a.send(conv, "once", cmid)
        again = a.send(conv, "once", cmid)
        self.assertEqual(again, first)
        nxt = a.send(conv, "next")
        self.assertEqual(nxt["seq"], first["seq"] + 1, "the duplicate took no seq")
        b.wait_for("message:new", lambda e: e["message"]["id"] == nxt["id"])
        self.assertEqual(len(b.received("message:new", lambda e: e["message"]["id"] == first["id"])), 1)

    def test_sync_after_reconnect_on_the_other_node(self):
        alice, bob = uid("alice"), uid("bob")
        conv = conversation([alice, bob])
        a = self.connect(A, alice)
        b = self.connect(B, bob)
        first = a.send(conv, "before")
        b.wait_for("message:new", lambda e: e["message"]["id"] == first["id"])
        b.close()
        self.clients.remove(b)
        missed = [a.send(conv, f"missed {i}") for i in range(3)]
        b = self.connect(A, bob, transports=("polling",))
        res = b.ack("messages:sync", {"conversationId": conv, "afterSeq": first["seq"]})
        self.assertTrue(res["ok"], res)
        self.assertEqual([m["id"] for m in res["messages"]], [m["id"] for m in missed])
        self.assertEqual([m["seq"] for m in res["messages"]], [2, 3, 4])

    def test_presence_and_typing(self):
        alice, bob = uid("alice"), uid("bob")
        status, body = api("PUT", f"/v1/users/{alice}/friends", {"friends": [bob]})
        self.assertEqual(status, 200, body)
        conv = conversation([alice, bob])
        b = self.connect(A, bob, transports=("polling",))
        # Alice leaves over websocket: python-engineio 4.3's polling write
        # loop can exit before it posts the close packets, and the server
        # then notices only at the ping timeout.
        a = self.connect(B, alice)
        b.wait_for("presence", lambda p: p["userId"] == alice and p["online"])
        res = b.ack("presence:get", {"userIds": [alice]})
        self.assertTrue(res["presence"][alice]["online"], res)
        self.assertTrue(a.ack("typing:start", {"conversationId": conv})["ok"])
        t = b.wait_for("typing", lambda t: t["typing"])
        self.assertEqual(t, {"conversationId": conv, "userId": alice, "typing": True})
        a.close()
        self.clients.remove(a)
        p = b.wait_for("presence", lambda p: p["userId"] == alice and not p["online"])
        self.assertEqual(p["status"], "offline")

    def test_bad_input_gets_error_codes(self):
        alice, carol = uid("alice"), uid("carol")
        conv = conversation([alice, uid("bob")])
        a = self.connect(A, alice)
        c = self.connect(B, carol)
        cases = [
            (a, "message:send", {}, "invalid"),
            (a, "message:send", "not an object", "invalid"),
            (a, "message:send", {"conversationId": conv, "clientMessageId": "x", "content": "y" * (17 * 1024)}, "too_large"),
            (a, "message:send", {"conversationId": uid("nope"), "clientMessageId": "x", "content": "hi"}, "not_found"),
            (c, "message:send", {"conversationId": conv, "clientMessageId": "x", "content": "hi"}, "forbidden"),
            (a, "messages:sync", {"conversationId": conv, "afterSeq": -1}, "invalid"),
            (a, "no:such:event", {}, "invalid"),
        ]
        for s, event, payload, code in cases:
            res = s.ack(event, payload)
            self.assertFalse(res["ok"], (event, payload))
            self.assertEqual(res["error"]["code"], code, (event, str(payload)[:80], res))
            self.assertTrue(res["error"]["message"])
        res = a.ack("messages:sync", {"conversationId": conv})
        self.assertEqual(res["messages"], [], "nothing was stored")

    def test_bad_token_is_refused(self):
        sio = socketio.Client(reconnection=False)
        refused = threading.Event()
        got = {}

        @sio.on("connect_error")
        def on_error(data):
            got["data"] = data
            refused.set()

        # python-socketio 5.7 waits out wait_timeout after a connect_error
        # before it raises, so keep that short; the event came before.
        with self.assertRaises(socketio.exceptions.ConnectionError):
            sio.connect(B, auth={"token": token(uid("mallory"), secret=b"wrong secret")},
                        transports=["websocket"], wait_timeout=1)
        self.assertTrue(refused.wait(WAIT), "no connect_error")
        self.assertEqual(got["data"]["message"], "unauthorized")
        sio.disconnect()


if __name__ == "__main__":
    unittest.main(verbosity=2)
