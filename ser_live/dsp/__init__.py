"""Signal processing on analysis windows: framing, spectra and pitch, the speech gate, dereverberation."""
