"""kazoo's Lock and Election recipes across a leader kill, driven by tests/it/failover.rs.

Not collected by the standalone kazoo run (its name does not start with test_); the Rust
test runs it with pytest against a three-node ensemble and kills the leader in the middle:

    EK_HOSTS      every node's client address, comma-separated
    EK_LEADER     the leader's client address
    EK_SIGNAL_DIR a directory: this script creates `ready` once its clients hold the lock
                  and the leadership, then waits for the test to create `killed`

Client `a` connects to the leader alone and then learns every host (set_hosts), so the
kill certainly breaks its connection; it must reconnect elsewhere with the same session,
still holding the lock and the leadership, and both recipes must then hand over to `b`.
Every wait is bounded; nothing asserts how long anything took.
"""

import os
import threading
import time
import uuid

import pytest
from kazoo.client import KazooClient, KazooState

WAIT_S = 60.0
SESSION_S = 30.0
# Reconnect quickly and forever (within the session timeout) after the leader dies.
CONNECTION_RETRY = {"max_tries": -1, "delay": 0.1, "backoff": 1.5, "max_delay": 1.0}


def env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"set {name} (see this file's docstring)")
    return value


def wait_for(predicate, what, timeout=WAIT_S):
    """Polls predicate until it is true; fails the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def started(hosts, then_hosts=None):
    client = KazooClient(
        hosts=hosts, timeout=SESSION_S, connection_retry=CONNECTION_RETRY
    )
    client.start(timeout=WAIT_S)
    if then_hosts:
        client.set_hosts(then_hosts)
    return client


def in_thread(target, *args):
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def test_lock_and_election_survive_leader_kill():
    hosts, leader, signals = env("EK_HOSTS"), env("EK_LEADER"), env("EK_SIGNAL_DIR")
    base = f"/kazoo-cluster-{uuid.uuid4().hex}"
    a = started(leader, then_hosts=hosts)
    b = started(hosts)
    a_states = []
    a.add_listener(a_states.append)
    a_session = a.client_id[0]
    try:
        # a holds the lock; b queues behind it.
        lock_a = a.Lock(f"{base}/lock", "a")
        assert lock_a.acquire(timeout=WAIT_S), "a could not take a free lock"
        lock_b = b.Lock(f"{base}/lock", "b")
        b_locked = threading.Event()

        def take_b():
            if lock_b.acquire(timeout=4 * WAIT_S):
                b_locked.set()

        in_thread(take_b)
        wait_for(lambda: len(lock_a.contenders()) == 2, "b to queue for the lock")

        # a leads; b stands for election behind it.
        a_leads, a_resigns = threading.Event(), threading.Event()
        b_leads, b_resigns = threading.Event(), threading.Event()

        def lead_a():
            a_leads.set()
            a_resigns.wait(4 * WAIT_S)

        def lead_b():
            b_leads.set()
            b_resigns.wait(4 * WAIT_S)

        election_a = a.Election(f"{base}/election", "a")
        election_b = b.Election(f"{base}/election", "b")
        in_thread(election_a.run, lead_a)
        wait_for(a_leads.is_set, "a to lead")
        in_thread(election_b.run, lead_b)
        wait_for(lambda: len(election_a.contenders()) == 2, "b to stand for election")
        assert not b_locked.is_set() and not b_leads.is_set()

        open(os.path.join(signals, "ready"), "w").close()
        wait_for(
            lambda: os.path.exists(os.path.join(signals, "killed")),
            "the test to kill the leader",
            timeout=4 * WAIT_S,
        )

        # a was on the killed node: it was suspended, then reconnected elsewhere.
        wait_for(
            lambda: KazooState.SUSPENDED in a_states
            and a.state == KazooState.CONNECTED,
            "a to lose its node and reconnect to another",
        )
        assert KazooState.LOST not in a_states, f"a's session was lost: {a_states}"
        assert a.client_id[0] == a_session, "a reconnected with a new session"

        # Both recipes still hold, and nothing moved to b.
        assert lock_a.is_acquired
        assert lock_a.contenders() == ["a", "b"], lock_a.contenders()
        assert election_a.contenders() == ["a", "b"], election_a.contenders()
        assert not b_locked.is_set(), "b took the lock a still holds"
        assert not b_leads.is_set(), "b leads while a still does"

        # And both hand over.
        lock_a.release()
        wait_for(b_locked.is_set, "b to get the lock a released")
        a_resigns.set()
        wait_for(b_leads.is_set, "b to lead after a resigned")
        lock_b.release()
        b_resigns.set()

        # A client that starts after the kill uses the recipes as well.
        c = started(hosts)
        try:
            lock_c = c.Lock(f"{base}/lock", "c")
            assert lock_c.acquire(timeout=WAIT_S), "c could not take the free lock"
            lock_c.release()
        finally:
            c.stop()
            c.close()
    finally:
        for client in (a, b):
            client.stop()
            client.close()
