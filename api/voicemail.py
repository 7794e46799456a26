"""A subscriber's voicemails: list, play/download the WAV, delete.

Recordings are files the challenge UA wrote under ``<data_dir>/voicemail/``; the store holds
their metadata with the path relative to the data directory. A path is only ever opened
after it resolves inside that directory (no ``..``, no symlink out of it), whatever the row
says.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from aiohttp import web

from .auth import SUBSCRIBERS, current_user, roles
from .errors import not_found
from .payload import page, page_params, path_id
from .state import ApiState, state


def recording_file(st: ApiState, stored: str) -> Path | None:
    """The file a voicemail row names, if it lies inside ``<data_dir>/voicemail``."""
    root = st.voicemail_dir.resolve()
    p = Path(stored)
    full = (p if p.is_absolute() else st.data_dir / p).resolve()
    if not full.is_relative_to(root) or full.suffix.lower() != ".wav":
        return None
    return full


def stored_path(st: ApiState, reported: str) -> str | None:
    """How to store a path the challenge UA reported (relative to the data directory), or
    None if it does not lie inside ``<data_dir>/voicemail``."""
    p = Path(reported)
    full = p.resolve() if p.is_absolute() else Path.cwd().joinpath(p).resolve()
    root = st.voicemail_dir.resolve()
    if not full.is_relative_to(root) or full.suffix.lower() != ".wav":
        return None
    return str(full.relative_to(st.data_dir.resolve()))


@roles(*SUBSCRIBERS)
async def voicemails(request: web.Request) -> web.Response:
    user = current_user(request)
    st = state(request)
    limit, before = page_params(request.query, st.config.page_size)
    return page("voicemails", await st.store.voicemails_for_user(user.id, limit, before), limit)


@roles(*SUBSCRIBERS)
async def voicemail_audio(request: web.Request) -> web.StreamResponse:
    """Stream the WAV (Range requests work, so the page's player can seek)."""
    user = current_user(request)
    st = state(request)
    vm_id = path_id(request)
    vm = await st.store.get_voicemail(user.id, vm_id)
    if vm is None:
        raise not_found(f"no voicemail {vm_id}")
    path = recording_file(st, vm.path)
    if path is None or not path.is_file():
        raise not_found(f"the recording of voicemail {vm_id} is no longer on disk")
    if not vm.heard:
        await st.store.mark_voicemail_heard(user.id, vm_id)
    return web.FileResponse(
        path,
        headers={
            "Content-Type": "audio/wav",
            "Content-Disposition": f'inline; filename="voicemail-{vm_id}.wav"',
            "Cache-Control": "private, no-store",
        },
    )


@roles(*SUBSCRIBERS)
async def voicemail_delete(request: web.Request) -> web.Response:
    user = current_user(request)
    st = state(request)
    vm_id = path_id(request)
    vm = await st.store.delete_voicemail(user.id, vm_id)
    if vm is None:
        raise not_found(f"no voicemail {vm_id}")
    path = recording_file(st, vm.path)
    if path is not None:
        for f in (path, path.with_suffix(".json")):
            with contextlib.suppress(OSError):
                f.unlink()
    return web.Response(status=204)
