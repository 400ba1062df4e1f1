"""The viewer tests' ``ports`` fixture, for the Dask test that streams into napari."""

from ..viewer.conftest import ports  # noqa: F401
