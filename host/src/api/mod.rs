//! The REST API (warp) over the supervisor handle, and the `pymanager ctl` client.
