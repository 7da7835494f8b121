"""Audio in and out: PortAudio capture, the ring buffer and its windows, audio files, playback."""
