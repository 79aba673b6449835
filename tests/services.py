"""Start and stop the throwaway servers of make test from inside a test."""

import subprocess
import time


class RedisServer:
    def __init__(self, port: int, workdir: str):
        self.port = port
        self.workdir = workdir

    def ping(self) -> bool:
        result = subprocess.run(
            ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True
        )
        return result.stdout.strip() == "PONG"

    def stop(self) -> None:
        subprocess.run(
            ["redis-cli", "-p", str(self.port), "shutdown", "nosave"], capture_output=True
        )
        for _ in range(50):
            if not self.ping():
                return
            time.sleep(0.1)
        raise RuntimeError("redis did not stop")

    def start(self) -> None:
        if self.ping():
            return
        subprocess.run(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "yes",
                "--dir",
                self.workdir,
                "--pidfile",
                f"{self.workdir}/redis.pid",
                "--logfile",
                f"{self.workdir}/redis.log",
            ],
            check=True,
        )
        for _ in range(50):
            if self.ping():
                return
            time.sleep(0.1)
        raise RuntimeError("redis did not start")
