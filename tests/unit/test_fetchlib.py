"""fetchlib's decisions without building anything: --rpc flags and key, and which installed build a run keeps."""

from __future__ import annotations

from llamactypes import fetchlib

PIN = fetchlib.read_pin()


def _args(*argv: str):  # type: ignore[no-untyped-def]
    return fetchlib.parse_args(list(argv))


def _manifest(rpc: bool) -> dict:
    return {"source": "sdist", "backend": "cpu", "llama_cpp_tag": PIN["LLAMA_CPP_TAG"], "rpc": rpc,
            "flags": fetchlib.build_flags("cpu", True, [], rpc)}


def test_rpc_adds_the_cmake_flag_and_changes_the_build_key() -> None:
    plain = fetchlib.build_flags("cpu", True, [])
    rpc = fetchlib.build_flags("cpu", True, [], rpc=True)
    assert fetchlib.RPC_FLAG not in plain and rpc == plain + [fetchlib.RPC_FLAG]
    assert fetchlib.build_key(PIN, "cpu", plain) != fetchlib.build_key(PIN, "cpu", rpc)
    # the flag given by hand is the same build (and the same cache entry)
    assert fetchlib.build_flags("cpu", True, [fetchlib.RPC_FLAG]) == rpc
    assert fetchlib.build_flags("cuda", True, [], rpc=True)[-2:] == ["-DGGML_NATIVE=ON", fetchlib.RPC_FLAG]


def test_plain_run_keeps_an_installed_rpc_build() -> None:
    assert fetchlib.installed_is_enough(_manifest(rpc=True), _args("--backend", "cpu"), PIN)
    assert fetchlib.installed_is_enough(_manifest(rpc=True), _args("--backend", "cpu", "--rpc"), PIN)


def test_rpc_run_replaces_a_plain_build() -> None:
    assert fetchlib.installed_is_enough(_manifest(rpc=False), _args("--backend", "cpu"), PIN)
    assert not fetchlib.installed_is_enough(_manifest(rpc=False), _args("--backend", "cpu", "--rpc"), PIN)
    assert not fetchlib.installed_is_enough(_manifest(rpc=True), _args("--backend", "cpu", "--force"), PIN)
    assert not fetchlib.installed_is_enough(None, _args(), PIN)


def test_describe_names_the_rpc_backend() -> None:
    assert fetchlib.describe(_manifest(rpc=True)) == "cpu + rpc"
    assert fetchlib.describe(_manifest(rpc=False)) == "cpu"
