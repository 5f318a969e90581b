"""Baselines a plain client gets from the same emulator: raw keep-alive GETs and a paged list.

python3 baseline.py get  HOST PORT CAFILE TOKENFILE PATH... -> median ns of one GET on a warm connection
python3 baseline.py list HOST PORT CAFILE TOKENFILE         -> ns to page through /secrets, and the page count
python3 baseline.py provider HOST PORT CAFILE SECRETFILE TENANT CLIENT PODS NAME...
    -> what the Secrets Store CSI driver's Azure provider does per pod mount (docs/kubernetes.md, the table
       under "akvfs in Kubernetes: the CSI node plugin", row Fetching): a new credential (one token request
       on a new connection) and a new client (a new connection), then one GET per object, sequentially.
       Prints the first pod's ns, the median ns of the others, and the GETs sent.
The token and the client secret are read from files, never taken from argv.
"""
import http.client
import json
import socket
import ssl
import statistics
import sys
import time
import urllib.parse


class LoopbackConnection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 with the vault's name for SNI and Host (*.localhost needs no /etc/hosts)."""

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def connect(host, port, cafile):
    context = ssl.create_default_context(cafile=cafile)
    return LoopbackConnection(host, int(port), context=context)


def get(connection, path, token):
    connection.request("GET", path, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        raise SystemExit(f"GET {path} answered {response.status}")
    return body


def provider_mount(host, port, cafile, secret, tenant, client, names):
    """One pod's mount as the Azure provider performs it."""
    login = connect("localhost", port, cafile)
    form = urllib.parse.urlencode({
        "grant_type": "client_credentials", "client_id": client, "client_secret": secret,
        "scope": f"https://vault.localhost:{port}/.default",
    })
    login.request("POST", f"/{tenant}/oauth2/v2.0/token", body=form, headers={"Content-Type": "application/x-www-form-urlencoded"})
    response = login.getresponse()
    token = json.loads(response.read())["access_token"]
    login.close()
    vault = connect(host, port, cafile)
    for name in names:
        get(vault, f"/secrets/{name}?api-version=7.6", token)
    vault.close()
    return len(names)


def main():
    mode, host, port, cafile, token_file = sys.argv[1:6]
    if mode == "provider":
        secret = open(token_file).read().strip()
        tenant, client, pods, names = sys.argv[6], sys.argv[7], int(sys.argv[8]), sys.argv[9:]
        times, gets = [], 0
        for _ in range(pods):
            start = time.perf_counter_ns()
            gets += provider_mount(host, port, cafile, secret, tenant, client, names)
            times.append(time.perf_counter_ns() - start)
        print(times[0], statistics.median(times[1:] or times), gets)
        return
    token = open(token_file).read().strip()
    connection = connect(host, port, cafile)
    if mode == "get":
        paths = sys.argv[6:]
        get(connection, paths[0] + "?api-version=7.6", token)  # warm the connection
        times = []
        for path in paths[1:]:
            start = time.perf_counter_ns()
            get(connection, path + "?api-version=7.6", token)
            times.append(time.perf_counter_ns() - start)
        print(statistics.median(times))
    elif mode == "list":
        get(connection, "/secrets?api-version=7.6&maxresults=1", token)  # warm the connection
        start = time.perf_counter_ns()
        link, pages, names = "/secrets?api-version=7.6", 0, 0
        while link:
            page = json.loads(get(connection, link, token))
            pages += 1
            names += len(page.get("value", []))
            next_link = page.get("nextLink")
            link = None
            if next_link:
                parsed = urllib.parse.urlsplit(next_link)
                link = parsed.path + "?" + parsed.query
        print(time.perf_counter_ns() - start, pages, names)


main()
