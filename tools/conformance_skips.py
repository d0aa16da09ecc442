"""What tools/conformance.py covers: the loops it can test, the test_asyncio
modules it runs by default, on request only or never, and the single tests it
skips; every module left out and every test skipped has its reason here."""

from __future__ import annotations

PACKAGE = "test.test_asyncio"

LOOPS: dict[str, tuple[str, str] | None] = {
    # name -> (module, attribute) of the loop class/factory; None = stock asyncio
    "asyncio": None,
    "uvloop": ("uvloop", "Loop"),
    "rloop": ("rloop", "RLoop"),
    "tokio": ("rloop", "TokioLoop"),
}

DEFAULT_MODULES: list[str] = [
    "test_futures",
    "test_futures2",
    "test_tasks",
    "test_taskgroups",
    "test_timeouts",
    "test_locks",
    "test_queues",
    "test_waitfor",
    "test_context",
    "test_pep492",
    "test_runners",
    "test_threads",
    "test_events",
    "test_streams",
    "test_server",
    "test_sock_lowlevel",
    "test_buffered_proto",
    "test_protocols",
    "test_transports",
    "test_subprocess",
    "test_ssl",
    "test_sslproto",
    "test_sendfile",
]

OPTIONAL_MODULES: dict[str, str] = {
    "test_unix_events": (
        "mostly unit tests of asyncio.unix_events internals: _UnixReadPipeTransport/"
        "_UnixWritePipeTransport built directly on a mock loop, the child-watcher "
        "classes and _UnixSelectorEventLoop signal handling via mocked selectors; "
        "only a handful of tests touch the public loop API. Run it with --modules "
        "test_unix_events if wanted."
    ),
}

OUT_OF_SCOPE: dict[str, str] = {
    "test_base_events": "tests asyncio.base_events.BaseEventLoop internals (CPython's loop class)",
    "test_selector_events": "tests BaseSelectorEventLoop/_SelectorTransport internals with mocks",
    "test_proactor_events": "tests the Windows proactor loop and its transports",
    "test_windows_events": "Windows-only loop classes",
    "test_windows_utils": "Windows-only helpers",
}

NOT_TEST_MODULES: dict[str, str] = {
    "utils": "shared test helpers, no tests",
    "functional": "shared test helpers (threaded servers), no tests",
    "echo": "helper script used by test_subprocess",
    "echo2": "helper script used by test_subprocess",
    "echo3": "helper script used by test_subprocess",
    "__main__": "package runner",
}

# Modules the rloop loops cannot run yet: they wait on features rloop does
# not have, so they only hang until the time limit. Skipped for rloop and
# tokio unless named with --modules; listed with the reason in the JSON.
NOT_YET: dict[str, str] = {}
RLOOP_LOOPS = ("rloop", "tokio")

# Single tests of asyncio's own implementation rather than of the loop API:
# they mock a private method of asyncio's loop classes or assert that an
# object is an instance of one of asyncio's private classes, so no other
# loop can pass them. Skipped on every loop, stock asyncio included, so the
# numbers of the loops compare; keyed "module:pattern", the pattern an
# fnmatch over the test id without the "test.test_asyncio.<module>." prefix.
ASYNCIO_INTERNALS: dict[str, str] = {
    **{
        f"test_events:*.test_call_soon_threadsafe_handle_{name}": (
            "asserts isinstance(handle, asyncio.events._ThreadSafeHandle), asyncio's private "
            "class; the assertion fails in the test's thread, which then never stops the loop, "
            "so the module hangs. rloop's call_soon_threadsafe handles have the behaviour "
            "(tests/core/test_threadsafe.py)"
        )
        for name in ("block_check_cancelled", "block_cancellation",
                     "cancel_same_thread", "cancel_other_thread")
    },
    "test_events:*.test_timeout_rounding": (
        "replaces the loop's private _run_once to count iterations"
    ),
    "test_events:*.test_create_server_multiple_hosts_ipv[46]": (
        "replaces the loop's private _start_serving/_stop_serving with mocks and mocks "
        "the socket module"
    ),
    "test_subprocess:*.test_create_subprocess_fails_with_inactive_watcher": (
        "installs an inactive child watcher in asyncio's policy (deprecated in 3.12, gone "
        "in 3.14) and expects the loop to consult it; rloop watches its children itself "
        "(python/rloop/child_watcher.py)"
    ),
    "test_subprocess:*.test_watcher_implementation": (
        "asserts that the loop's private _watcher is one of asyncio's private watcher classes"
    ),
    "test_subprocess:*.test_pid_not_reaped_before_exit_published": (
        "reads the private _threads table of the loop's private _watcher; rloop's thread "
        "fallback keeps the same rule (tests/processes)"
    ),
    "test_ssl:*.test_remote_shutdown_receives_trailing_data_on_slow_socket": (
        "(3.14+) mocks the transport's write() with a side effect that reads the selector "
        "transport's private _read_ready_cb and swaps its private _sock; elsewhere it fails "
        "there with AttributeError and the server thread waits forever. The flow it checks "
        "(writes after close() from resume_writing) is tests/net_scenarios.py's "
        "test_resume_writing_after_close_may_still_write"
    ),
    "test_sslproto:*.test_connection_lost_when_busy": (
        "builds a transport from a mock socket with the loop's private "
        "_make_socket_transport"
    ),
}

# Single tests that hang on rloop's loops for a cause tracked elsewhere.
# Skipped there (not on stock asyncio) so that the rest of their module
# runs and is checked.
KNOWN_HANGS: dict[str, str] = {}


def skip_reason(module: str, test_id: str, loop_name: str) -> str | None:
    """Why the test `test_id` of `module` is skipped on `loop_name`, if it is."""
    import fnmatch

    tables = [ASYNCIO_INTERNALS] + ([KNOWN_HANGS] if loop_name in RLOOP_LOOPS else [])
    for table in tables:
        for key, reason in table.items():
            mod, _, pattern = key.partition(":")
            if mod == module and fnmatch.fnmatchcase(test_id, pattern):
                return reason
    return None
