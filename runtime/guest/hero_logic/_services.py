"""`services`: registered JSON-RPC services as Python objects.

    forecast = services.weather.forecast(city="Ghent", days=3)

Every call goes through the host, which checks it, opens the `rpc` span around
it and enforces the run's quotas; the flow cannot skip or fake any of that.
"""

from . import _errors, _host


class ServiceError(Exception):
    """Base of every error a service call raises."""

    def __init__(self, message, service=None, method=None):
        super().__init__(message)
        self.service = service
        self.method = method


class RpcError(ServiceError):
    """The service answered with a JSON-RPC error: `.code`, `.message`, `.data`."""

    def __init__(self, message, service=None, method=None, code=None, data=None):
        super().__init__(message, service, method)
        self.code = code
        self.message = message
        self.data = data

    def _hero_logic_error_fields(self):
        return {"code": self.code, "data": self.data}


class ServiceUnavailable(ServiceError, ConnectionError):
    """The service could not be reached, or its answer was not JSON-RPC."""


class ServiceTimeout(ServiceError, TimeoutError):
    """The service did not answer within the host's per-call timeout."""


class UnknownService(ServiceError, AttributeError):
    """No service of that name is registered."""


class InvalidParams(ServiceError, TypeError):
    """The parameters do not match the method's schema; nothing was sent."""


def _raise_for(service, method, error):
    kind = error.get("type")
    message = error.get("message") or f"{service}.{method} failed"
    if kind == "RpcError":
        raise RpcError(message, service, method, error.get("code"), error.get("data"))
    if kind == "Timeout":
        raise ServiceTimeout(message, service, method)
    if kind == "UnknownService":
        raise UnknownService(message, service, method)
    if kind == "UnknownMethod":
        raise AttributeError(message)
    if kind == "PermissionDenied":
        raise PermissionError(message)
    if kind == "InvalidParams":
        raise InvalidParams(message, service, method)
    raise ServiceUnavailable(message, service, method)


class _Method:
    __slots__ = ("_service", "_method")

    def __init__(self, service, method):
        self._service = service
        self._method = method

    def __call__(self, **params):
        ok, value = _host.rpc_call(self._service, self._method, params, _errors.caller_line())
        if ok:
            return value
        _raise_for(self._service, self._method, value)

    def __repr__(self):
        return f"<service method {self._service}.{self._method}>"


class _Service:
    __slots__ = ("_name",)

    def __init__(self, name):
        self._name = name

    def __getattr__(self, method):
        if method.startswith("__"):
            raise AttributeError(method)
        return _Method(self._name, method)

    def __repr__(self):
        return f"<service {self._name}>"


class _Services:
    """`services.<name>.<method>(**params)` calls a registered service."""

    RpcError = RpcError
    ServiceError = ServiceError
    ServiceUnavailable = ServiceUnavailable
    ServiceTimeout = ServiceTimeout
    UnknownService = UnknownService
    InvalidParams = InvalidParams

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Service(name)


services = _Services()
