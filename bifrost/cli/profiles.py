"""Connection profiles: ``@name`` wherever a URL goes.

A profile file (``~/.config/bifrost/profiles.yaml``, or ``--profiles FILE``, or the
``BIFROST_PROFILES`` variable) names connections::

    profiles:
      line1:
        url: modbus://10.0.0.5:502
        tags: line1.yaml            # relative to this file
        options: {unit: 1, timeout: 2.0}
        writable: false             # `bifrost write @line1 ...` still needs --writable
      mixer:
        url: opc.tcp://10.0.0.9:4840
        options: {security: "Basic256Sha256,SignAndEncrypt", user: operator}
        secrets: {password: env:MIXER_PASSWORD}   # also keyring:SERVICE/USER, file:PATH

Secrets are references only: a password, token or key in ``options`` is refused, and
neither ``profiles list`` nor an error ever shows a secret's value. The file is checked
with pydantic; an error names the file, the line and the key (exit code 2).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bifrost.exceptions import ConfigurationError

__all__ = [
    "Profile",
    "ProfileFile",
    "default_path",
    "load",
    "names",
    "profiles_path",
    "set_path",
]

SECRET_SOURCES = ("env:", "keyring:", "file:")
# Option names that carry credentials (substrings, lower-case): they go under secrets.
_CREDENTIALS = ("password", "passwd", "secret", "token", "private_key_password", "api_key")


class _Override:
    path: Path | None = None  # from --profiles, for this run


def default_path() -> Path:
    """``$XDG_CONFIG_HOME/bifrost/profiles.yaml`` (``~/.config`` by default)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "bifrost" / "profiles.yaml"


def set_path(path: Path | None) -> None:
    """Use ``path`` (from ``--profiles``) instead of the variable or the default."""
    _Override.path = path


def profiles_path() -> Path:
    """The profile file in use: ``--profiles``, else ``BIFROST_PROFILES``, else the default."""
    if _Override.path is not None:
        return _Override.path
    env = os.environ.get("BIFROST_PROFILES")
    return Path(env) if env else default_path()


@dataclass(frozen=True)
class Profile:
    """One checked profile (paths resolved, secrets still references)."""

    name: str
    url: str
    tags: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)
    writable: bool = False
    secrets: dict[str, str] = field(default_factory=dict)
    description: str = ""

    def connect_options(self) -> dict[str, Any]:
        """Options for :func:`bifrost.connect`, each secret looked up now (as a Secret)."""
        from bifrost.secrets import secret

        looked_up: dict[str, Any] = {}
        for key, reference in self.secrets.items():
            try:
                looked_up[key] = secret(reference)
            except ConfigurationError as exc:
                raise ConfigurationError(f"profile {self.name!r}, secret {key!r}: {exc}") from None
        return {**self.options, **looked_up}


@dataclass(frozen=True)
class ProfileFile:
    """Every profile of one file."""

    path: Path
    profiles: dict[str, Profile]

    def get(self, name: str) -> Profile:
        """The profile ``name``; the error lists the names there are."""
        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(f"@{n}" for n in sorted(self.profiles)) or "none"
            raise ConfigurationError(
                f"no profile {name!r} in {self.path} (profiles: {known}); "
                "`bifrost profiles list` shows them"
            ) from None


def _models() -> Any:
    # pydantic loads only when a profile is used: `bifrost --help` stays fast.
    from pydantic import BaseModel, ConfigDict, Field, field_validator

    class ProfileModel(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)

        url: str = Field(min_length=1)
        tags: str | None = None
        options: dict[str, str | int | float | bool] = Field(default_factory=dict)
        writable: bool = False
        secrets: dict[str, str] = Field(default_factory=dict)
        description: str = ""

        @field_validator("secrets")
        @classmethod
        def _references(cls, value: dict[str, str]) -> dict[str, str]:
            for key, reference in value.items():
                if not reference.startswith(SECRET_SOURCES) or ":" not in reference[:-1]:
                    raise ValueError(
                        f"secret {key!r} must be a reference (env:NAME, keyring:SERVICE/USER "
                        "or file:PATH), never the secret itself"
                    )
            return value

        @field_validator("options")
        @classmethod
        def _no_clear_secrets(
            cls, value: dict[str, str | int | float | bool]
        ) -> dict[str, str | int | float | bool]:
            for key in value:
                if any(word in key.lower() for word in _CREDENTIALS):
                    raise ValueError(
                        f"option {key!r} is a credential: move it to `secrets:` as a "
                        "reference (env:NAME, keyring:SERVICE/USER or file:PATH)"
                    )
            return value

    class FileModel(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)

        profiles: dict[str, ProfileModel] = Field(default_factory=dict)

        @field_validator("profiles")
        @classmethod
        def _names(cls, value: dict[str, ProfileModel]) -> dict[str, ProfileModel]:
            for name in value:
                if not name or not all(c.isalnum() or c in "_.-" for c in name):
                    raise ValueError(
                        f"profile name {name!r}: use letters, digits, '_', '.' and '-'"
                    )
            return value

    return FileModel


def load(path: Path | None = None) -> ProfileFile:
    """Read and check a profile file (default: :func:`profiles_path`).

    Raises
    ------
    ConfigurationError
        The file is missing, is not YAML, or a profile is invalid: the message names the
        file, the line and the key.
    """
    import yaml
    from pydantic import ValidationError

    source = path or profiles_path()
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(
            f"no profile file at {source}; create it (see `bifrost profiles --help`) or "
            "point --profiles / BIFROST_PROFILES at one"
        ) from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read {source}: {exc.strerror or exc}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigurationError(f"{source}{line}: not valid YAML ({problem})") from None
    try:
        model = _models().model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise ConfigurationError(_describe(source, node, exc)) from None
    profiles = {
        name: Profile(
            name=name,
            url=entry.url,
            tags=(source.parent / entry.tags).resolve() if entry.tags else None,
            options=dict(entry.options),
            writable=entry.writable,
            secrets=dict(entry.secrets),
            description=entry.description,
        )
        for name, entry in model.profiles.items()
    }
    return ProfileFile(source, profiles)


def names() -> list[str]:
    """Profile names of the file in use, or none if it cannot be read (for completion)."""
    try:
        return sorted(load().profiles)
    except ConfigurationError:
        return []


def _describe(source: Path, root: Any, exc: Any) -> str:
    errors = exc.errors()
    first = errors[0]
    location = [str(part) for part in first["loc"]]
    line = _line_of(root, location)
    where = f"{source}:{line}" if line else str(source)
    key = ".".join(location) or "(top level)"
    message = str(first["msg"]).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {key}: {message}{more}"


def _line_of(node: Any, location: list[str]) -> int | None:
    """The 1-based line of the key at ``location`` in a composed YAML tree, or its parent's."""
    import yaml

    line = None
    for part in location:
        if not isinstance(node, yaml.MappingNode):
            break
        for key, value in node.value:
            if str(key.value) == part:
                line = key.start_mark.line + 1
                node = value
                break
        else:
            break
    if line is None and node is not None:
        line = node.start_mark.line + 1
    return line
