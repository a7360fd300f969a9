"""WebDAV (RFC 4918, with RFC 4331's quota properties) at /dav/: each caller's tree, as the API
shows it, for Finder, Explorer, davfs2, rclone and anything else that speaks it."""
