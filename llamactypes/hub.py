"""Models by name: `owner/repo[:QUANT]` resolved to a GGUF file from the Hugging Face Hub.

    pull_model("bartowski/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M")  # -> Path of the cached .gguf file
    resolve_model("model.gguf")                                 # a local path stays a local path

The download itself is `huggingface_hub`'s: its cache (`HF_HUB_CACHE`, default
`~/.cache/huggingface/hub`, shared with every other tool that uses it), its
progress bars, its retries that resume an interrupted transfer with a Range
request, `HF_TOKEN` for gated or private repos, `HF_ENDPOINT` for a mirror.
What is ours is choosing the file: the GGUF files of the repo whose name carries
the quantization (case-insensitive, `Q4_K_M` never matches `Q4_K_S` or `Q4_K`),
all parts of a split model (`-00001-of-00003.gguf`) or none, and errors that
say which quantizations the repo has. Without a network the cached snapshot is
used. Layer 1: imports only `errors`; `huggingface_hub` is imported on first use.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Sequence

from .errors import HubError

__all__ = ["HubRef", "parse_hub_ref", "looks_like_hub_ref", "choose_gguf", "pull_model", "resolve_model",
           "DEFAULT_QUANT"]

DEFAULT_QUANT = "Q4_K_M"  # llama.cpp's `-hf` default when a repo holds several quantizations

_REF = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?::(?P<quant>[\w.+-]+))?$")
_SPLIT = re.compile(r"^(?P<prefix>.+)-(?P<part>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
# GGUF files that are not a language model on their own: vision projectors, importance matrices
_NOT_A_MODEL = re.compile(r"(^|[-_.])(mmproj|imatrix)([-_.]|$)", re.IGNORECASE)


@dataclass(frozen=True)
class HubRef:
    """A model named on the Hub: `repo_id` ("owner/repo") and an optional quantization or file name."""

    repo_id: str
    quant: str | None = None

    def __str__(self) -> str:
        return self.repo_id + (f":{self.quant}" if self.quant else "")


def parse_hub_ref(text: str) -> HubRef:
    """`owner/repo[:QUANT]` -> HubRef; anything else raises HubError saying what is expected."""
    match = _REF.match(text.strip())
    if match is None or ".." in match.group("repo"):
        raise HubError(f"{text!r} is not a Hub model name: expected owner/repo or owner/repo:QUANT "
                       f"(e.g. bartowski/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M)")
    return HubRef(match.group("repo"), match.group("quant"))


def looks_like_hub_ref(text: str) -> bool:
    """True for `owner/repo[:QUANT]` that is not an existing local path nor a `.gguf` file name."""
    if text.lower().endswith(".gguf") or Path(text).expanduser().exists():
        return False
    return _REF.match(text.strip()) is not None and ".." not in text


def _stem(name: str) -> str:
    """The file name without `.gguf` and without a split suffix."""
    base = PurePosixPath(name).name
    split = _SPLIT.match(base)
    if split:
        return split.group("prefix")
    return base[:-5] if base.lower().endswith(".gguf") else base


def _quant_of(name: str) -> str:
    """Best-effort quantization label of a file (for error messages): the stem's last '-'/'.' part."""
    return re.split(r"[-.]", _stem(name))[-1]


def _has_quant(name: str, quant: str) -> bool:
    pattern = r"(?:^|(?<=[-._]))" + re.escape(quant) + r"(?=$|[-.])"
    return re.search(pattern, _stem(name), re.IGNORECASE) is not None


def choose_gguf(files: Sequence[str], quant: str | None, repo_id: str = "the repo") -> list[str]:
    """The repo file(s) to download for `quant`: one file, or every part of a split model (part 1 first).

    `quant` may also be an exact file name in the repo. Without `quant`: the only model file, or
    `DEFAULT_QUANT` when several exist. Raises HubError naming what the repo offers.
    """
    ggufs = sorted(f for f in files if f.lower().endswith(".gguf") and not _NOT_A_MODEL.search(PurePosixPath(f).name))
    if not ggufs:
        raise HubError(f"{repo_id} has no GGUF model file (files: {', '.join(sorted(files)[:10]) or 'none'})")
    if quant and quant.lower().endswith(".gguf"):
        exact = [f for f in ggufs if f == quant or PurePosixPath(f).name == quant]
        if not exact:
            raise HubError(f"{repo_id} has no file {quant}; its GGUF files: {', '.join(ggufs)}")
        matches = exact if not _SPLIT.match(PurePosixPath(exact[0]).name) else \
            [f for f in ggufs if _split_group(f) == _split_group(exact[0])]
    elif quant:
        matches = [f for f in ggufs if _has_quant(f, quant)]
        if not matches:
            offered = sorted({_quant_of(f) for f in ggufs})
            raise HubError(f"{repo_id} has no {quant} file; quantizations there: {', '.join(offered)} "
                           f"(use {repo_id}:QUANT)")
    else:
        groups = {_split_group(f) for f in ggufs}
        matches = ggufs if len(groups) == 1 else [f for f in ggufs if _has_quant(f, DEFAULT_QUANT)]
        if not matches:
            offered = sorted({_quant_of(f) for f in ggufs})
            raise HubError(f"{repo_id} holds several models ({', '.join(offered)}): choose one with "
                           f"{repo_id}:QUANT")
    groups = sorted({_split_group(f) for f in matches})
    if len(groups) > 1:
        raise HubError(f"several files in {repo_id} match {quant or DEFAULT_QUANT}: "
                       f"{', '.join(g[0] for g in groups)}; name one exactly with {repo_id}:FILE.gguf")
    return _complete_split(matches, repo_id)


def _split_group(name: str) -> tuple[str, int]:
    """(prefix or the name itself, part count) — files of one split model share it."""
    split = _SPLIT.match(name)
    return (name[: -len("-00001-of-00003.gguf")], int(split.group("count"))) if split else (name, 1)


def _complete_split(names: list[str], repo_id: str) -> list[str]:
    """One plain file, or all parts 1..N of a split model in order; a gap is refused."""
    if len(names) == 1 and not _SPLIT.match(PurePosixPath(names[0]).name):
        return names
    parts = {int(_SPLIT.match(PurePosixPath(n).name).group("part")): n  # type: ignore[union-attr]
             for n in names if _SPLIT.match(PurePosixPath(n).name)}
    count = _split_group(names[0])[1]
    missing = [i for i in range(1, count + 1) if i not in parts]
    if missing or len(parts) != len(names):
        raise HubError(f"{repo_id}: the split model {names[0]} is incomplete on the Hub "
                       f"(missing parts {missing or '?'} of {count})")
    return [parts[i] for i in range(1, count + 1)]


def _cached_files(repo_id: str, cache_dir: str | os.PathLike[str] | None, revision: str) -> list[str]:
    """Files of the cached snapshot of `repo_id` at `revision` (for use without a network)."""
    from huggingface_hub import constants

    root = Path(cache_dir or constants.HF_HUB_CACHE) / ("models--" + repo_id.replace("/", "--"))
    ref = root / "refs" / revision
    commit = ref.read_text().strip() if ref.is_file() else revision
    snapshot = root / "snapshots" / commit
    if not snapshot.is_dir():
        return []
    return [p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file()]


def _list_files(ref: HubRef, revision: str, cache_dir: Any, endpoint: str | None, token: Any,
                offline: bool) -> list[str]:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled, RepositoryNotFoundError

    if offline:
        cached = _cached_files(ref.repo_id, cache_dir, revision)
        if not cached:
            raise HubError(f"offline (HF_HUB_OFFLINE) and nothing is cached for {ref.repo_id}: "
                           f"pull it once with a network")
        return cached
    api = HfApi(endpoint=endpoint, token=token)
    try:
        return [entry.path for entry in api.list_repo_tree(ref.repo_id, recursive=True, revision=revision)
                if getattr(entry, "size", None) is not None]
    except RepositoryNotFoundError:
        raise HubError(f"no model repository {ref.repo_id} on {api.endpoint} (check the name; a private or "
                       f"gated repo needs HF_TOKEN with access to it)") from None
    except (HfHubHTTPError, OfflineModeIsEnabled, OSError) as exc:
        cached = _cached_files(ref.repo_id, cache_dir, revision)
        if cached:
            return cached
        raise HubError(f"could not list {ref.repo_id} on {api.endpoint} and nothing is cached for it: "
                       f"{_first_line(exc)}") from None
    except Exception as exc:  # httpx transport errors do not derive from OSError
        if type(exc).__module__.split(".")[0] not in ("httpx", "httpx2", "httpcore", "httpcore2"):
            raise
        cached = _cached_files(ref.repo_id, cache_dir, revision)
        if cached:
            return cached
        raise HubError(f"could not reach {api.endpoint} to list {ref.repo_id} and nothing is cached for it: "
                       f"{_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def pull_model(name: str, *, revision: str = "main", cache_dir: str | os.PathLike[str] | None = None,
               endpoint: str | None = None, token: str | None = None, progress: bool | None = None,
               offline: bool | None = None) -> Path:
    """Download `owner/repo[:QUANT]` (every part of a split model) into the Hub cache; the local path
    of the (first) GGUF file. A file already cached is not downloaded again.

    endpoint: default `HF_ENDPOINT` or https://huggingface.co; token: default `HF_TOKEN` or the saved
    login; progress: huggingface_hub's progress bars (default: when stderr is a terminal); offline:
    only the cache, no request at all (default `HF_HUB_OFFLINE`). Without a network the cached
    snapshot is used too, after huggingface_hub's retries.
    """
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    ref = parse_hub_ref(name)
    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or None
    offline = constants.HF_HUB_OFFLINE if offline is None else offline
    files = choose_gguf(_list_files(ref, revision, cache_dir, endpoint, token, offline), ref.quant, ref.repo_id)
    show = sys.stderr.isatty() if progress is None else progress
    paths = []
    for filename in files:
        try:
            paths.append(Path(hf_hub_download(ref.repo_id, filename, revision=revision, cache_dir=cache_dir,
                                              endpoint=endpoint, token=token, local_files_only=offline,
                                              tqdm_class=None if show else _quiet_tqdm())))
        except (EntryNotFoundError, LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
            raise HubError(f"could not download {filename} from {ref.repo_id}: {_first_line(exc)}") from None
        except Exception as exc:
            if type(exc).__module__.split(".")[0] not in ("httpx", "httpx2", "httpcore", "httpcore2"):
                raise
            raise HubError(f"could not download {filename} from {ref.repo_id}: {_first_line(exc)}") from None
    return paths[0]


def _quiet_tqdm() -> type:
    from tqdm.auto import tqdm

    class QuietTqdm(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return QuietTqdm


def resolve_model(arg: str, **options: Any) -> Path:
    """A model argument as the commands take it: an existing path, or `owner/repo[:QUANT]` pulled from
    the Hub (options go to `pull_model`). Anything else is returned as a path, for the loader's error."""
    if looks_like_hub_ref(arg):
        try:
            return pull_model(arg, **options)
        except HubError as exc:  # maybe a mistyped local path: say both
            raise HubError(f"{arg} is not a file here, and as a Hub model name: {exc}") from None
    return Path(arg).expanduser()
