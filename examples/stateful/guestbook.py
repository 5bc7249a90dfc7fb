"""A tiny stateful web service for nixproc's stateful example.

Notes live in a PostgreSQL database, uploaded files in a directory. The
schema depends on the code version (GUESTBOOK_VERSION):

  v1: table notes(id, body)                  files in UPLOADS/
  v2: table entries(id, title, body)         files in UPLOADS/by-id/

  GET  /         "guestbook v<N>" and one line per note
  POST /notes    adds the request body as a note
  GET  /files    one line per uploaded file
  PUT  /files/N  stores the request body as file N

Only the Python standard library and psql are used (no drivers needed).
"""

import http.server
import os
import subprocess
import sys

VERSION = os.environ["GUESTBOOK_VERSION"]
PSQL = os.environ["GUESTBOOK_PSQL"]
UPLOADS = os.environ["GUESTBOOK_UPLOADS"]
FILES = UPLOADS if VERSION == "1" else os.path.join(UPLOADS, "by-id")

LIST = {
    "1": "SELECT body FROM notes ORDER BY id;",
    "2": "SELECT title || ': ' || body FROM entries ORDER BY id;",
}[VERSION]
ADD = {
    "1": "INSERT INTO notes(body) VALUES (:'body');",
    "2": "INSERT INTO entries(title, body) VALUES ('note', :'body');",
}[VERSION]


def psql(sql, **variables):
    """Runs SQL through psql; variables are passed as psql variables, so
    values are quoted by psql (:'name'), never spliced into the SQL."""
    cmd = [PSQL, "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"]
    for k, v in variables.items():
        cmd += ["-v", f"{k}={v}"]
    r = subprocess.run(cmd, input=sql, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip())
    return r.stdout


class Handler(http.server.BaseHTTPRequestHandler):
    def reply(self, code, text):
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        return self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()

    def do_GET(self):
        try:
            if self.path == "/":
                self.reply(200, f"guestbook v{VERSION}\n" + psql(LIST))
            elif self.path == "/files":
                names = sorted(os.listdir(FILES)) if os.path.isdir(FILES) else []
                files = [n for n in names if os.path.isfile(os.path.join(FILES, n))]
                self.reply(200, "".join(f + "\n" for f in files))
            else:
                self.reply(404, "not found\n")
        except Exception as e:  # the error is the answer
            self.reply(500, f"error: {e}\n")

    def do_POST(self):
        try:
            if self.path == "/notes":
                psql(ADD, body=self.body())
                self.reply(201, "added\n")
            else:
                self.reply(404, "not found\n")
        except Exception as e:
            self.reply(500, f"error: {e}\n")

    def do_PUT(self):
        name = self.path[len("/files/"):]
        if not self.path.startswith("/files/") or not name or "/" in name or name.startswith("."):
            self.reply(400, "bad file name\n")
            return
        os.makedirs(FILES, exist_ok=True)
        with open(os.path.join(FILES, name), "w") as f:
            f.write(self.body())
        self.reply(201, "stored\n")


if __name__ == "__main__":
    port = int(sys.argv[1])
    print(f"guestbook v{VERSION} listening on {port}", flush=True)
    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
