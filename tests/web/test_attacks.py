"""A hostile corpus against the real pages: the labeling app and the ICPL chooser served by uvicorn
on 127.0.0.1, spoken to over real sockets. Every attack checks the status code AND that nothing
was stored (no label in labels.sqlite, no choice.json)."""

import json
import select
import socket
import stat
import time

import pytest

from robreward.codegen.choose import CHOICE_FILE, ask, create_choice_app
from robreward.feedback.preferences.app import background_server
from robreward.web.security import MAX_BODY, load_or_create_token, parse_json
from robreward.web.server import BackgroundServer

from tests.feedback.test_app import make_run
from tests.web.client import Site

EVIL = "http://evil.example"


@pytest.fixture
def label_site(tmp_path):
    """(Site of a served labeling page, its store, the query ids): 3 pending queries of round 0."""
    run, store, ids = make_run(tmp_path)
    with background_server(run, "127.0.0.1", 0) as server:
        yield Site.from_url(server.url), store, ids
    store.close()


def nothing_labeled(store, count=3):
    return store.progress() == (0, count) and store.labels(0) == {}


def label_body(query_id, value=1) -> bytes:
    return json.dumps({"query_id": query_id, "value": value}).encode()


# -- who may ask: token, Host, Origin ------------------------------------------------------------------
@pytest.mark.parametrize("attack", ["no token", "wrong token", "token in the query", "cookie of another port",
                                    "wrong cookie"])
def test_a_request_without_the_runs_token_is_a_403(label_site, attack):
    site, store, ids = label_site
    headers, token, path = {"Content-Type": "application/json"}, None, "/api/label"
    if attack == "wrong token":
        token = "x" * 43
    elif attack == "token in the query":  # accepted on the page only (it sets the cookie), never on the API
        path += f"?token={site.token}"
    elif attack == "cookie of another port":
        headers["Cookie"] = f"robreward_token_{site.port + 1}={site.token}"
    elif attack == "wrong cookie":
        headers["Cookie"] = f"robreward_token_{site.port}={'y' * 43}"
    answer = site.request("POST", path, label_body(ids[0]), headers=headers, token=token)
    assert answer.status == 403 and "missing or wrong token" in answer.json()["detail"]
    for read in ("/api/next", "/clips/q0_l.mp4", "/"):  # reading is refused too: a foreign page learns nothing
        assert site.get(read, token=token).status == 403
    assert nothing_labeled(store)


def test_the_printed_address_sets_an_httponly_strict_cookie_that_then_suffices(label_site):
    site, store, ids = label_site
    page = site.get(f"/?token={site.token}", token=None)
    cookie = page.headers["set-cookie"]
    assert page.status == 200 and cookie.startswith(f"robreward_token_{site.port}={site.token};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    jar = {"Cookie": cookie.split(";")[0]}
    assert site.get("/?token=wrong", token=None).status == 403
    status, body = site.post_json("/api/label", {"query_id": ids[0], "value": 0}, token=None, headers=jar)
    assert status == 200 and store.labels(0) == {ids[0]: 0.0}


@pytest.mark.parametrize("host", ["evil.example:{port}", "127.0.0.1.nip.io:{port}", "127.0.0.1:{other}",
                                  "localhost.evil.example:{port}", "127.0.0.1", "[::2]:{port}", ""])
def test_a_foreign_host_header_is_a_400_against_dns_rebinding(label_site, host):
    site, store, ids = label_site
    host = host.format(port=site.port, other=site.port + 1)
    answer = site.request("POST", "/api/label", label_body(ids[0]),
                          headers={"Host": host, "Content-Type": "application/json"})
    assert answer.status == 400 and "is not this server" in answer.json()["detail"]
    assert site.get("/api/next", headers={"Host": host}).status == 400
    assert nothing_labeled(store)


def test_the_local_names_of_this_server_are_allowed(label_site):
    site, _, _ = label_site
    for host in (f"127.0.0.1:{site.port}", f"localhost:{site.port}", f"LOCALHOST:{site.port}"):
        assert site.get("/api/next", headers={"Host": host}).status == 200, host


def test_a_repeated_host_header_is_a_400(label_site):
    site, store, ids = label_site
    raw = (f"POST /label/api/label HTTP/1.1\r\nHost: 127.0.0.1:{site.port}\r\nHost: evil.example\r\n"
           f"X-Robreward-Token: {site.token}\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(label_body(ids[0]))}\r\n\r\n").encode() + label_body(ids[0])
    assert raw_exchange(site, raw).startswith(b"HTTP/1.1 400")
    assert nothing_labeled(store)


@pytest.mark.parametrize("origin", [EVIL, "null", "http://127.0.0.1:1", "https://127.0.0.1:{port}",
                                    "http://localhost:{port}"])
def test_a_cross_origin_post_is_a_403_even_with_the_token(label_site, origin):
    site, store, ids = label_site
    origin = origin.format(port=site.port)
    status, body = site.post_json("/api/label", {"query_id": ids[0], "value": 1}, headers={"Origin": origin})
    assert status == 403 and "cross-origin request refused" in body["detail"]
    preflight = site.request("OPTIONS", "/api/label", headers={"Origin": origin,
                                                               "Access-Control-Request-Method": "POST"}, token=None)
    assert preflight.status == 403 and "access-control-allow-origin" not in preflight.headers
    assert nothing_labeled(store)
    # the page's own origin passes
    status, _ = site.post_json("/api/label", {"query_id": ids[0], "value": 1},
                               headers={"Origin": f"http://127.0.0.1:{site.port}"})
    assert status == 200


# -- what a body may be: JSON, small -------------------------------------------------------------------
@pytest.mark.parametrize("content_type, body", [
    ("text/plain", None), ("text/plain;charset=UTF-8", None), ("application/x-www-form-urlencoded", None),
    ("application/x-www-form-urlencoded", b"query_id=1&value=1"), ("multipart/form-data; boundary=x", None),
    (None, None), ("application/jsonx", None), ("application/json-patch+json", None),
])
def test_a_body_that_is_not_declared_json_is_a_415(label_site, content_type, body):
    site, store, ids = label_site
    headers = {} if content_type is None else {"Content-Type": content_type}
    answer = site.request("POST", "/api/label", body or label_body(ids[0]), headers=headers)
    assert answer.status == 415 and "application/json" in answer.json()["detail"]
    assert nothing_labeled(store)


def test_a_declared_400_mb_body_is_a_413_before_it_is_sent(label_site):
    site, store, _ = label_site
    head = (f"POST /label/api/label HTTP/1.1\r\nHost: 127.0.0.1:{site.port}\r\nX-Robreward-Token: {site.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {400 * 2 ** 20}\r\n\r\n").encode()
    started = time.monotonic()
    answer = raw_exchange(site, head)  # the headers only: the answer comes without waiting for the body
    assert answer.startswith(b"HTTP/1.1 413") and b"the limit is 65536" in answer
    assert time.monotonic() - started < 5
    assert nothing_labeled(store)


def test_a_streamed_400_mb_body_is_a_413_after_the_limit_not_after_the_body(label_site):
    """Chunked (no length given): the server reads up to the limit, answers 413, and never holds the rest."""
    site, store, ids = label_site
    sock = socket.create_connection((site.host, site.port), timeout=20)
    sock.sendall((f"POST /label/api/label HTTP/1.1\r\nHost: 127.0.0.1:{site.port}\r\n"
                  f"X-Robreward-Token: {site.token}\r\nContent-Type: application/json\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n").encode())
    chunk = b" " * 2 ** 20
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent, started, answer = 0, time.monotonic(), b""
    try:
        for _ in range(400):  # 400 MiB at most, one reused 1 MiB chunk: the client holds 1 MiB
            if select.select([sock], [], [], 0)[0]:
                break
            sock.sendall(framed)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer = read_answer(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"over the limit of 65536 bytes" in answer
    assert sent <= 64 * 2 ** 20, f"the client could send {sent >> 20} MiB before the refusal"
    assert time.monotonic() - started < 20
    assert nothing_labeled(store)
    assert site.post_json("/api/label", {"query_id": ids[0], "value": 1})[0] == 200  # the server is fine


@pytest.mark.parametrize("length", ["abc", "-1", "1e9", "99999999999999999999999"])
def test_a_malformed_content_length_is_a_4xx(label_site, length):
    site, store, ids = label_site
    head = (f"POST /label/api/label HTTP/1.1\r\nHost: 127.0.0.1:{site.port}\r\nX-Robreward-Token: {site.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n").encode()
    answer = raw_exchange(site, head + label_body(ids[0]))
    assert answer[9:10] == b"4", answer[:100]  # uvicorn's parser or the guard: 400 or 413, never 5xx
    assert nothing_labeled(store)


# -- what a label may be: 4xx for every malformed one, never 5xx ----------------------------------------
DEEP = 30_000  # nested arrays that still fit the 64 KiB limit: json.loads raises RecursionError on them


@pytest.mark.parametrize("raw, status, message", [
    (b"[" * DEEP + b"]" * DEEP, 400, "nested too deeply"),
    (b'{"query_id": ' + b"[" * DEEP + b"]" * DEEP + b', "value": 1}', 400, "nested too deeply"),
    (b"[" * 100_000 + b"]" * 100_000, 413, "limit"),  # 100k deep does not fit the limit
    (b"[]", 400, "the body must be"), (b'"label"', 400, "the body must be"), (b"1", 400, "the body must be"),
    (b"null", 400, "the body must be"), (b"{}", 400, "the body must be"), (b'{"value": 1}', 400, "the body must be"),
    (b'{"query_id": 1}', 400, "the body must be"), (b"", 400, "must be JSON"), (b"\xff\xfe{}", 400, "must be JSON"),
    (b'{"query_id": NaN, "value": 1}', 400, "NaN is not JSON"),
    (b'{"query_id": 1, "value": Infinity}', 400, "Infinity is not JSON"),
    (b'{"query_id": 1.5, "value": 1}', 400, "query_id must be an integer"),
    (b'{"query_id": true, "value": 1}', 400, "query_id must be an integer"),
    (b'{"query_id": "1", "value": 1}', 400, "query_id must be an integer"),
    (b'{"query_id": {"$gt": 0}, "value": 1}', 400, "query_id must be an integer"),
    (b'{"query_id": 1, "value": 1e400}', 400, "label must be 0"),
    (b'{"query_id": 1, "value": ' + b"9" * 400 + b"}", 400, "label must be 0"),
    (b'{"query_id": 1, "value": [1]}', 400, "label must be 0"),
    (b'{"query_id": 1, "value": 2}', 400, "label must be 0"),
    (b'{"query_id": 9223372036854775808, "value": 1}', 404, "unknown query id"),  # 2 ** 63: past SQLite's range
    (b'{"query_id": ' + b"9" * 1000 + b', "value": 1}', 404, "unknown query id"),
    (b'{"query_id": -1, "value": 1}', 404, "unknown query id"),
    (b'{"query_id": 0, "value": 1}', 404, "unknown query id"),
])
def test_malformed_labels_are_4xx_with_a_message_and_store_nothing(label_site, raw, status, message):
    site, store, _ = label_site
    got, body = site.post_json("/api/label", raw=raw)
    assert got == status and message in body["detail"], (got, body)
    assert nothing_labeled(store)


def test_deep_json_is_a_value_error_not_a_recursion_error():
    with pytest.raises(ValueError, match="nested too deeply"):
        parse_json(b"[" * 100_000 + b"]" * 100_000)
    assert parse_json(b'{"a": [1, 2]}') == {"a": [1, 2]}


def test_a_round_the_loop_has_used_cannot_be_relabeled(label_site):
    """The loop closes a round when it takes its labels into labels.npz: the store and the file must agree."""
    site, store, ids = label_site
    for query_id, value in zip(ids, (0, 1, None)):
        assert site.post_json("/api/label", {"query_id": query_id, "value": value})[0] == 200
    assert site.post_json("/api/label", {"query_id": ids[0], "value": 0.5})[0] == 200  # open: it may change
    used = store.close_round(0)
    assert used == {ids[0]: 0.5, ids[1]: 1.0, ids[2]: None}
    for query_id in ids:
        status, body = site.post_json("/api/label", {"query_id": query_id, "value": 1})
        assert status == 409 and f"query {query_id} belongs to round 0, which the training loop has already used" \
            in body["detail"]
    assert store.labels(0) == used and store.close_round(0) == used  # closing again: the same labels


# -- the chooser: the same guard ---------------------------------------------------------------------------
@pytest.fixture
def choose_site(tmp_path):
    iter_dir = tmp_path / "iter_00"
    (iter_dir / "videos").mkdir(parents=True)
    ask(iter_dir, 0, [{"id": "cand_00", "fitness": 0.5}, {"id": "cand_01", "fitness": 0.1}])
    with BackgroundServer(create_choice_app(tmp_path), "127.0.0.1", 0) as server:
        yield Site.from_url(server.url), iter_dir


CHOICE = {"iteration": 0, "best": "cand_01", "worst": "cand_00"}


@pytest.mark.parametrize("attack, status", [
    ({"token": None}, 403), ({"headers": {"Origin": EVIL}}, 403), ({"headers": {"Host": "evil.example"}}, 400),
    ({"headers": {"Content-Type": "text/plain"}}, 415),
    ({"headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 415),
    ({"raw": b"[" * DEEP + b"]" * DEEP}, 400), ({"raw": b" " * (MAX_BODY + 1)}, 413),
    ({"raw": json.dumps({**CHOICE, "iteration": 2 ** 70}).encode()}, 409),
    ({"raw": json.dumps({**CHOICE, "best": ["cand_01"]}).encode()}, 400),
    ({"raw": json.dumps({**CHOICE, "iteration": "0"}).encode()}, 400),
    ({"raw": json.dumps({**CHOICE, "best": "x" * 60_000}).encode()}, 400),
    ({"raw": b"[]"}, 400),
])
def test_the_chooser_refuses_the_same_attacks_and_writes_no_choice(choose_site, attack, status):
    site, iter_dir = choose_site
    headers = {"Content-Type": "application/json", **attack.get("headers", {})}
    answer = site.request("POST", "/api/choice", attack.get("raw", json.dumps(CHOICE).encode()), headers=headers,
                          token=attack.get("token", "auto"))
    assert answer.status == status, (answer.status, answer.body[:200])
    assert not (iter_dir / CHOICE_FILE).exists()
    assert site.post_json("/api/choice", CHOICE) == (200, {"ok": True})  # the real page still can


# -- the token file -------------------------------------------------------------------------------------------
def test_the_token_is_random_private_to_the_user_and_kept_per_run(tmp_path):
    (tmp_path / "a").mkdir()
    first = load_or_create_token(tmp_path / "a")
    assert len(first) >= 43 and load_or_create_token(tmp_path / "a") == first
    assert stat.S_IMODE((tmp_path / "a" / "web_token").stat().st_mode) == 0o600
    (tmp_path / "b").mkdir()
    assert load_or_create_token(tmp_path / "b") != first
    (tmp_path / "b" / "web_token").write_text("short\n")  # damaged: replaced by a fresh one
    fresh = load_or_create_token(tmp_path / "b")
    assert fresh != "short" and load_or_create_token(tmp_path / "b") == fresh


# -- helpers ----------------------------------------------------------------------------------------------------
def raw_exchange(site: Site, request: bytes) -> bytes:
    """Send bytes exactly as given, return what the server answers (up to its first response)."""
    with socket.create_connection((site.host, site.port), timeout=20) as sock:
        sock.sendall(request)
        return read_answer(sock)


def read_answer(sock: socket.socket) -> bytes:
    """One HTTP response: the headers and a Content-Length body."""
    data = b""
    sock.settimeout(20)
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        if not more:
            return data
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        more = sock.recv(65536)
        if not more:
            break
        body += more
    return head + b"\r\n\r\n" + body
