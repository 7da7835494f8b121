"""The console front-end: the ser-live command's options, the console monitor, batch and device listing."""
