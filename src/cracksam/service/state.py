"""What the service's handlers share (:class:`ServiceState`), apart from the app so the routes and
the app factory can both import it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cracksam.service.problems import ApiError
from cracksam.service.served_model import JobRunner, LoadedModel
from cracksam.service.settings import ServiceSettings
from cracksam.service.uploads import Budget, ClientBudgets


@dataclass
class ServiceState:
    """What the handlers share: the settings, the loaded model (or why there is none) and the pool."""

    settings: ServiceSettings
    runner: JobRunner | None = None
    model: LoadedModel | None = None
    status: Literal["loading", "ok", "error"] = "loading"
    load_error: str | None = None
    formats: tuple[str, ...] = field(default_factory=tuple)
    uploads: Budget | None = None  # upload bytes in flight, all requests together
    client_uploads: ClientBudgets | None = None  # upload bytes in flight per client address
    pixels: Budget | None = None  # decoded pixels in flight, all requests together
    skipped_before_start: int = 0  # requests whose client had gone before their job was queued

    def require_model(self) -> LoadedModel:
        if self.model is None or self.runner is None:
            detail = "the model is still loading" if self.status == "loading" else f"no model: {self.load_error}"
            raise ApiError(503, "model_not_ready", detail, headers={"Retry-After": "2"})
        return self.model
