"""``FileManager``: one ``save_batch`` that routes a batch to storage backends by name.

The reference system's pipelines save through a file manager
(``filemanager.save_batch(data=images, paths=paths, backend='napari_stream')``); this is
platestream's, small, with three backends:

* ``disk``: each array written as a TIFF at its path (``tifffile``), folders made;
* ``zarr``: into an OME-Zarr run store (``platestream.store.RunStore``: NGFF 0.5, one HCS
  plate per step) at the folder given when the manager was made;
* ``napari_stream``: streamed to a viewer - the ``NapariStreamVisualizer`` registered with
  ``stream_to`` (its queue keeps images while the viewer is starting), else a
  ``NapariStreamingBackend`` of the manager's streaming config.

``backend`` may name several (``["disk", "napari_stream"]``): a pipeline saves and streams
the same batch in one call. Paths are read by their microscope's naming (the components
of each image); ``register`` adds a backend of your own (anything with
``save_batch(data, paths, **options)``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import tifffile

from platestream.layering import ImageItem, parse_name


class FileBackend(Protocol):
    def save_batch(self, data: Sequence[Any], paths: Sequence[Any], **options: Any) -> Any: ...


class DiskFiles:
    """TIFF files at the given paths."""

    def save_batch(self, data: Sequence[Any], paths: Sequence[Any], **options: Any) -> int:
        for array, path in zip(data, paths, strict=True):
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(target, np.asarray(array))
        return len(paths)


class StoreFiles:
    """An OME-Zarr run store: each image at the place its path's components name."""

    def __init__(self, folder: str | os.PathLike[str], title: str = "") -> None:
        from platestream.store import RunStore

        self.store = RunStore(Path(folder), title=title or Path(folder).name)
        self.unplaced: dict[str, int] = {}  # images the store had no place for, by reason

    def save_batch(
        self,
        data: Sequence[Any],
        paths: Sequence[Any],
        *,
        step_index: int = 0,
        step_name: str = "",
        **options: Any,
    ) -> int:
        stored = 0
        for array, path in zip(data, paths, strict=True):
            plane = np.array(array, copy=True)  # the store owns what it is given
            components = dict(parse_name(os.fspath(path)).components)
            extra = {"path": os.fspath(path)}
            item = ImageItem(
                components, step_index, step_name, plane.shape, plane.dtype.name, extra=extra
            )
            location, why = self.store.locate(item)
            if location is None:
                self.unplaced[why] = self.unplaced.get(why, 0) + 1
                continue
            self.store.put(location, plane, lambda _ok: None)
            stored += 1
        return stored

    def close(self) -> None:
        self.store.close()


class FileManager:
    """Saves batches through named backends (see the module docs)."""

    def __init__(
        self,
        *,
        zarr_store: str | os.PathLike[str] | None = None,
        streaming: Any = None,
    ) -> None:
        """``zarr_store``: the run store folder of the ``zarr`` backend (made on first
        use); ``streaming``: the ``NapariStreamingConfig`` of ``napari_stream`` when no
        visualizer is registered (default: the defaults, port 5555)."""
        self._backends: dict[str, Any] = {"disk": DiskFiles()}
        self._zarr_store = zarr_store
        self._streaming = streaming
        self._viewer: Any = None

    @property
    def backends(self) -> tuple[str, ...]:
        names = set(self._backends) | {"napari_stream"}
        if self._zarr_store is not None:
            names.add("zarr")
        return tuple(sorted(names))

    def register(self, name: str, backend: FileBackend) -> None:
        """Route ``backend=name`` to ``backend`` (a name already taken is replaced)."""
        self._backends[name] = backend

    def stream_to(self, viewer: Any) -> None:
        """Stream ``napari_stream`` batches through this visualizer (or anything with its
        ``save_batch``); its queue keeps them while the viewer is starting."""
        self._viewer = viewer

    def save_batch(
        self,
        data: Sequence[Any],
        paths: Sequence[Any],
        backend: str | Sequence[str] = "disk",
        **options: Any,
    ) -> dict[str, Any]:
        """Save ``data[i]`` at ``paths[i]`` through each backend named; what each
        returned, by name (an unknown name is refused before anything is saved)."""
        if len(data) != len(paths):
            raise ValueError(f"{len(data)} arrays but {len(paths)} paths")
        names = [backend] if isinstance(backend, str) else list(backend)
        unknown = [name for name in names if name not in self.backends]
        if unknown:
            known = ", ".join(self.backends)
            raise ValueError(f"no file backend {', '.join(map(repr, unknown))}; known: {known}")
        return {name: self._backend(name).save_batch(data, paths, **options) for name in names}

    def _backend(self, name: str) -> Any:
        if name == "napari_stream":
            if self._viewer is not None:
                return self._viewer
            if name not in self._backends:
                from platestream.backend import NapariStreamingBackend

                self._backends[name] = NapariStreamingBackend(self._streaming)
        if name == "zarr" and name not in self._backends:
            assert self._zarr_store is not None
            self._backends[name] = StoreFiles(self._zarr_store)
        return self._backends[name]

    def close(self) -> None:
        """Close what the manager opened (the run store is flushed, streams are ended)."""
        for backend in self._backends.values():
            close = getattr(backend, "close", None)
            if close is not None:
                close()

    def __enter__(self) -> FileManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
