"""The application layer under the front-ends: validated settings, sessions, batch scoring, review, devices."""
