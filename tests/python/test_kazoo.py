"""kazoo recipes against a running ZooKeeper-compatible server.

The server address comes from the environment variable EK_ADDR (host:port). Run with
Debian's interpreter and packages (python3-kazoo, python3-pytest):

    EK_ADDR=127.0.0.1:2181 /usr/bin/python3 -m pytest -q tests/python

Every test works under its own fresh base path, and every wait is bounded (WAIT_S); no
test asserts how long anything took.
"""

import os
import re
import threading
import time
import uuid

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadVersionError,
    NoNodeError,
    RolledBackError,
    RuntimeInconsistency,
)

WAIT_S = 30.0


def addr():
    value = os.environ.get("EK_ADDR")
    if not value:
        pytest.fail("set EK_ADDR=host:port to the server under test")
    return value


def wait_for(predicate, what, timeout=WAIT_S):
    """Polls predicate until it is true; fails the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


def new_client():
    client = KazooClient(hosts=addr(), timeout=10.0)
    client.start(timeout=WAIT_S)
    return client


@pytest.fixture
def clients():
    """Returns a factory of started clients; stops them all after the test."""
    made = []

    def make():
        client = new_client()
        made.append(client)
        return client

    yield make
    for client in made:
        try:
            client.stop()
            client.close()
        except Exception:  # a test may already have stopped it
            pass


@pytest.fixture
def base(clients):
    """A fresh, empty persistent node for one test, removed afterwards."""
    path = f"/kazoo-{uuid.uuid4().hex[:12]}"
    admin = clients()
    admin.create(path)
    yield path
    admin.delete(path, recursive=True)


def start_thread(target, *args):
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def test_lock_mutual_exclusion_and_handover(clients, base):
    c1, c2 = clients(), clients()
    path = f"{base}/lock"
    lock1 = c1.Lock(path, "one")
    lock2 = c2.Lock(path, "two")
    assert lock1.acquire(timeout=WAIT_S)

    acquired2 = threading.Event()

    def contend():
        if lock2.acquire(timeout=WAIT_S):
            acquired2.set()

    thread = start_thread(contend)
    wait_for(lambda: len(lock1.contenders()) == 2, "the second contender to queue")
    assert lock1.contenders() == ["one", "two"]
    assert not acquired2.is_set(), "both clients hold the lock"
    lock1.release()
    assert acquired2.wait(WAIT_S), "release did not hand the lock over"
    thread.join(WAIT_S)
    assert lock2.contenders() == ["two"]
    lock2.release()


def test_lock_never_held_twice(clients, base):
    path = f"{base}/lock"
    holders = []
    overlaps = []
    guard = threading.Lock()
    errors = []

    def worker(client, name):
        try:
            lock = client.Lock(path, name)
            for i in range(10):
                assert lock.acquire(timeout=WAIT_S)
                with guard:
                    holders.append(name)
                    if len(holders) > 1:
                        overlaps.append(list(holders))
                client.create(f"{base}/held-", name.encode(), sequence=True)
                with guard:
                    holders.remove(name)
                lock.release()
        except Exception as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [start_thread(worker, clients(), name) for name in ("a", "b")]
    for thread in threads:
        thread.join(2 * WAIT_S)
    assert not errors
    assert not overlaps
    assert len([c for c in clients().get_children(base) if c.startswith("held-")]) == 20


def test_election_leader_session_closes(clients, base):
    c1, c2 = clients(), clients()
    path = f"{base}/election"
    leaders = []
    stop = {"c1": threading.Event(), "c2": threading.Event()}

    def lead(name):
        leaders.append(name)
        stop[name].wait(2 * WAIT_S)

    def candidate(client, name):
        try:
            client.Election(path, name).run(lead, name)
        except Exception:  # c1's session is closed under it on purpose
            pass

    start_thread(candidate, c1, "c1")
    wait_for(lambda: leaders == ["c1"], "c1 to lead")
    start_thread(candidate, c2, "c2")
    election = c2.Election(path)
    wait_for(lambda: len(election.contenders()) == 2, "c2 to stand")
    assert election.contenders() == ["c1", "c2"]
    assert leaders == ["c1"]

    c1.stop()
    wait_for(lambda: leaders == ["c1", "c2"], "c2 to lead after c1's session closed")
    assert election.contenders() == ["c2"]
    stop["c1"].set()
    stop["c2"].set()


def test_counter_concurrent_increments(clients, base):
    path = f"{base}/counter"
    errors = []

    def bump(client):
        try:
            counter = client.Counter(path)
            for _ in range(25):
                counter += 1
        except Exception as error:
            errors.append(error)

    threads = [start_thread(bump, clients()) for _ in range(2)]
    for thread in threads:
        thread.join(2 * WAIT_S)
    assert not errors
    assert clients().Counter(path).value == 50


def test_data_watch_sees_each_change(clients, base):
    watcher, writer = clients(), clients()
    path = f"{base}/data"
    seen = []

    @watcher.DataWatch(path)
    def on_change(data, stat):
        seen.append(None if stat is None else (data, stat.version))

    wait_for(lambda: seen == [None], "the initial callback")
    writer.create(path, b"v0")
    wait_for(lambda: len(seen) == 2, "NodeCreated")
    writer.set(path, b"v1")
    wait_for(lambda: len(seen) == 3, "the first NodeDataChanged")
    writer.set(path, b"v2")
    wait_for(lambda: len(seen) == 4, "the second NodeDataChanged")
    writer.delete(path)
    wait_for(lambda: len(seen) == 5, "NodeDeleted")
    assert seen == [None, (b"v0", 0), (b"v1", 1), (b"v2", 2), None]


def test_children_watch_sees_each_change(clients, base):
    watcher, writer = clients(), clients()
    path = f"{base}/kids"
    writer.create(path)
    seen = []

    @watcher.ChildrenWatch(path)
    def on_change(children):
        seen.append(sorted(children))

    wait_for(lambda: seen == [[]], "the initial callback")
    writer.create(f"{path}/a")
    wait_for(lambda: len(seen) == 2, "the first child")
    writer.create(f"{path}/b")
    wait_for(lambda: len(seen) == 3, "the second child")
    writer.delete(f"{path}/a")
    wait_for(lambda: len(seen) == 4, "the deletion")
    assert seen == [[], ["a"], ["a", "b"], ["b"]]


def test_transaction_all_or_nothing(clients, base):
    client = clients()
    client.create(f"{base}/existing", b"old")

    failing = client.transaction()
    failing.create(f"{base}/x", b"1")
    failing.create(f"{base}/y", b"2")
    failing.check(f"{base}/existing", 7)
    failing.set_data(f"{base}/existing", b"never")
    results = failing.commit()
    # Ops before the failing one report 0 (RolledBackError), the failing one its own code,
    # the ones after it RuntimeInconsistency (-2).
    assert [type(r) for r in results] == [
        RolledBackError,
        RolledBackError,
        BadVersionError,
        RuntimeInconsistency,
    ]
    assert client.exists(f"{base}/x") is None
    assert client.exists(f"{base}/y") is None
    assert client.get(f"{base}/existing")[0] == b"old"

    ok = client.transaction()
    ok.create(f"{base}/x", b"1")
    ok.check(f"{base}/existing", 0)
    ok.set_data(f"{base}/existing", b"new")
    ok.delete(f"{base}/x")
    ok.create(f"{base}/y", b"2")
    results = ok.commit()
    assert results[0] == f"{base}/x"
    assert results[1] is True
    assert results[2].version == 1
    assert results[3] is True
    assert results[4] == f"{base}/y"
    assert client.get(f"{base}/existing")[0] == b"new"
    assert client.exists(f"{base}/x") is None
    assert client.get(f"{base}/y")[0] == b"2"
    # One transaction is one txn: both creates and the set share a zxid.
    assert client.exists(f"{base}/y").czxid == client.exists(f"{base}/existing").mzxid


def test_ephemeral_gone_after_owner_stops(clients, base):
    observer, owner = clients(), clients()
    path = f"{base}/eph"
    owner.create(path, b"mine", ephemeral=True)
    stat = observer.exists(path)
    assert stat is not None
    assert stat.ephemeralOwner == owner.client_id[0]
    owner.stop()
    wait_for(lambda: observer.exists(path) is None, "the ephemeral to vanish")


def test_sequential_naming(clients, base):
    client = clients()
    names = [client.create(f"{base}/s-", sequence=True) for _ in range(3)]
    assert names == [f"{base}/s-{n:010d}" for n in range(3)]
    client.delete(names[1])
    eph = client.create(f"{base}/e-", ephemeral=True, sequence=True)
    # The suffix counts the parent's child creates; the delete does not reuse or skip one.
    assert eph == f"{base}/e-0000000003"
    assert re.fullmatch(r".*/e-\d{10}", eph)
    assert sorted(client.get_children(base)) == ["e-0000000003", "s-0000000000", "s-0000000002"]
    with pytest.raises(NoNodeError):
        client.create(f"{base}/missing/s-", sequence=True)


def test_null_data_is_not_empty(clients, base):
    # kazoo's test_create_null_data / test_set_null_data: null (None) and empty data differ.
    client = clients()
    client.create(f"{base}/null", None)
    client.create(f"{base}/empty", b"")
    value, stat = client.get(f"{base}/null")
    assert value is None
    assert stat.dataLength == 0
    assert client.get(f"{base}/empty")[0] == b""
    client.create(f"{base}/set", b"not none")
    client.set(f"{base}/set", None)
    assert client.get(f"{base}/set")[0] is None
    client.set(f"{base}/empty", b"")
    assert client.get(f"{base}/empty")[0] == b""

