"""The resume policy: a search name that exists resumes with its saved config (only where it
runs may change), after every saved searcher state has been read back as ours."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from orchestrator.config import ConfigError, SearchConfig

#: what may differ between the saved config of a search and the command that resumes it
RESUME_MAY_CHANGE = ("address", "tracking_uri", "storage")


def prepare(cfg: SearchConfig, resume: bool) -> tuple[SearchConfig, bool]:
    """Decide between a new search and a resume. A resume runs the saved config: the command
    may change only where it runs (``RESUME_MAY_CHANGE``); any other difference (an edited YAML,
    ``--trials``, ``--data``) is refused with the keys that differ, since silently running the
    old config, or mixing two configs in one search, would both mislead."""
    from ray.tune import Tuner

    exists = (cfg.storage_is_uri or cfg.search_dir.exists()) and Tuner.can_restore(cfg.search_uri)
    if resume and not exists:
        raise ConfigError(f"--resume: no search named {cfg.name!r} under {cfg.storage_path}")
    if exists:
        stored = read_saved_config(cfg)
        if stored is not None:
            changed = config_diff(stored, cfg)
            if changed:
                raise ConfigError(f"search {cfg.name!r} exists with another config ({changed}); to resume, rerun "
                                  f"it with the saved values (a key your config leaves out takes this version's "
                                  f"default: set it to the saved value), or start a new search with --name")
            cfg = stored.with_overrides(address=cfg.address, tracking_uri=cfg.tracking_uri, storage=cfg.storage)
        check_saved_searcher_state(cfg)
        return cfg, True
    return cfg, False


SAVED_CONFIG = "search_config.json"


def _saved_config_location(cfg: SearchConfig):
    import pyarrow.fs

    fs, root = pyarrow.fs.FileSystem.from_uri(cfg.search_uri)
    return fs, root, f"{root}/{SAVED_CONFIG}"


def write_saved_config(cfg: SearchConfig) -> None:
    """The search's config beside its Ray state (``<storage>/<name>/search_config.json``, on the
    storage URI itself for ``s3://`` and the like), so a resume from any host compares with it."""
    fs, root, path = _saved_config_location(cfg)
    fs.create_dir(root, recursive=True)
    with fs.open_output_stream(path) as stream:
        stream.write(cfg.to_json().encode("utf-8"))


def read_saved_config(cfg: SearchConfig) -> SearchConfig | None:
    """What :func:`write_saved_config` wrote for this search, or None."""
    import pyarrow.fs

    fs, _, path = _saved_config_location(cfg)
    if fs.get_file_info(path).type != pyarrow.fs.FileType.File:
        return None
    with fs.open_input_stream(path) as stream:
        return SearchConfig.from_dict(json.loads(stream.read().decode("utf-8")))


def config_diff(old: SearchConfig, new: SearchConfig, limit: int = 4) -> str:
    """``"trials: 5 -> 7, train.epochs: 2 -> 3"`` for the keys a resume may not change."""
    a, b = old.flat_params(), new.flat_params()
    keys = [k for k in sorted(set(a) | set(b))
            if k.split(".")[0] not in RESUME_MAY_CHANGE and a.get(k) != b.get(k)]
    parts = [f"{k}: {a.get(k, '-')} -> {b.get(k, '-')}" for k in keys[:limit]]
    return ", ".join(parts) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def check_saved_searcher_state(cfg: SearchConfig) -> None:
    """Read every saved searcher state of the search (StateError if one is not ours) before Ray
    restores it: Ray logs a failed searcher restore and then silently starts the experiment
    afresh, which would mix a new search into the old one's records."""
    from orchestrator.strategy.searcher import PrescreenSearcher

    for path, read in _saved_searcher_states(cfg):
        PrescreenSearcher(cfg).restore_bytes(read(), path)


def _saved_searcher_states(cfg: SearchConfig) -> list[tuple[str, Callable[[], bytes]]]:
    """(path, reader of its content) of every searcher state Ray saved for this search, oldest
    session first (Ray names them by the session's start time)."""
    import pyarrow.fs
    from ray.tune.search import Searcher

    fs, root = pyarrow.fs.FileSystem.from_uri(cfg.search_uri)
    pattern = re.compile(re.escape(Searcher.CKPT_FILE_TMPL).replace(r"\{\}", ".*"))
    files = sorted(f.path for f in fs.get_file_info(pyarrow.fs.FileSelector(root, allow_not_found=True))
                   if f.type == pyarrow.fs.FileType.File and pattern.fullmatch(f.base_name))

    def reader(path: str) -> Callable[[], bytes]:
        def read() -> bytes:
            with fs.open_input_stream(path) as stream:
                return stream.read()
        return read

    return [(path, reader(path)) for path in files]


def final_searcher(cfg: SearchConfig):
    """The searcher as Ray saved it when the experiment ended (Ray writes a last checkpoint after
    the final trial, fresh or resumed run alike): its counters and surrogate for the summary."""
    from orchestrator.strategy.searcher import PrescreenSearcher

    states = _saved_searcher_states(cfg)
    if not states:
        raise RuntimeError(f"no saved searcher state under {cfg.search_uri}")
    path, read = states[-1]
    searcher = PrescreenSearcher(cfg)
    searcher.restore_bytes(read(), path)
    return searcher
