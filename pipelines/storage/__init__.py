"""Where state lives: lake and vector URLs (local or S3), the S3 capability probe, locks, shared records."""
