"""Per-key request rates and per-tenant quotas.

Rates: a token bucket per API key, in this process's memory (a restart forgets them: acceptable for a limiter whose
job is to keep one client from starving the others; several server processes would each allow the rate). Quotas
(jobs queued or running, stored bytes) are read from the database, the single source of truth."""

import threading
import time

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from synthforge.service.models import Dataset, Job


class RateLimiter:
    def __init__(self, per_minute: int, burst: int):
        self.rate, self.burst = per_minute / 60.0, float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key_id: str) -> float:
        """0 when the request may go ahead, else the seconds until it could."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[key_id] = (tokens - 1, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1 - tokens) / self.rate


def active_jobs(session: Session, tenant_id: str) -> int:
    return session.scalar(select(func.count()).select_from(Job).where(
        Job.tenant_id == tenant_id, Job.state.in_(("queued", "running")))) or 0


def stored_bytes(session: Session, tenant_id: str) -> int:
    return session.scalar(select(func.coalesce(func.sum(Dataset.bytes), 0)).where(Dataset.tenant_id == tenant_id)) or 0
