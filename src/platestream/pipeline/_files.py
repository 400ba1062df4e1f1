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
of each image; with ``plate_root``, channels named from the plate's metadata); the
``zarr`` and ``napari_stream`` backends get ``ImageItem``s made from them, ``disk`` and
backends of your own the paths (``register``: anything with ``save_batch(data, paths,
**options)``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
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

    def save_batch(self, data: Sequence[Any], items: Sequence[ImageItem], **options: Any) -> int:
        """Store ``data[i]`` at the place ``items[i]`` names; images the store has no
        place for (not in a plate well, points...) are counted in ``unplaced``."""
        stored = 0
        for array, item in zip(data, items, strict=True):
            location, why = self.store.locate(item)
            if location is None:
                self.unplaced[why] = self.unplaced.get(why, 0) + 1
                continue
            self.store.put(location, np.array(array, copy=True), lambda _ok: None)
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
        plate_root: str | os.PathLike[str] | None = None,
    ) -> None:
        """``zarr_store``: the run store folder of the ``zarr`` backend (made on first
        use); ``streaming``: the ``NapariStreamingConfig`` of ``napari_stream`` when no
        visualizer is registered (default: the defaults, port 5555); ``plate_root``: the
        plate the paths belong to, whose metadata names the channels (an HTD, an
        Index.xml): the images then stream and store as ``DAPI``, not ``1``."""
        self._backends: dict[str, Any] = {"disk": DiskFiles()}
        self._zarr_store = zarr_store
        self._streaming = streaming
        self._viewer: Any = None
        self.parse: Callable[[str], dict[str, Any]] = _components
        if plate_root is not None:
            from ._plate_folder import plate_path_parser

            self.parse = plate_path_parser(Path(plate_root))

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
        results = {}
        for name in names:
            target = self._backend(name)
            if name in ("zarr", "napari_stream"):  # placed by the path, by the plate's rules
                items = self._items(data, paths, options)
                results[name] = target.save_batch(data, items, **options)
            else:
                results[name] = target.save_batch(data, paths, **options)
        return results

    def _items(
        self, data: Sequence[Any], paths: Sequence[Any], options: dict[str, Any]
    ) -> list[ImageItem]:
        step = (int(options.get("step_index", 0)), str(options.get("step_name", "")))
        items = []
        for array, path in zip(data, paths, strict=True):
            shaped = np.asarray(array)
            text = os.fspath(path)
            items.append(
                ImageItem(
                    self.parse(text), *step, shaped.shape, shaped.dtype.name, extra={"path": text}
                )
            )
        return items

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


def _components(path: str) -> dict[str, Any]:
    return dict(parse_name(path).components)
