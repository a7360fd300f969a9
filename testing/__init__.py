"""Test machinery shared by the test suites and the benchmark: real servers on loopback ports
(servers.py), a TCP fault proxy (faultproxy.py), the MySQL helper (mysql.py), the in-process WSGI
caller (wsgi_client.py) and the one way to upload and download (uploads.py)."""
