"""The analysis engine: window analysis, the live monitor, and batch scoring on local workers or Dask."""
