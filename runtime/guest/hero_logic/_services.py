"""`services`: registered JSON-RPC services as Python objects.

    forecast = services.weather.forecast(city="Ghent", days=3)

Every call goes through the host, which checks it, opens the `rpc` span around
it and enforces the run's quotas; the flow cannot skip or fake any of that.
"""

import json

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


class UnknownMethod(ServiceError, AttributeError):
    """The service has no method of that name."""


class PermissionDenied(ServiceError, PermissionError):
    """The flow may not call this service (it is not among the services the
    flow declares), or a built-in refused what the flow has no capability for."""


class InvalidParams(ServiceError, TypeError):
    """The parameters do not match the method's schema; nothing was sent."""


# The exception for each case of the host's `call-error`, by case name.
_RAISED_AS = {
    "UnknownService": UnknownService,
    "UnknownMethod": UnknownMethod,
    "PermissionDenied": PermissionDenied,
    "InvalidParams": InvalidParams,
    "ServiceUnavailable": ServiceUnavailable,
    "ServiceTimeout": ServiceTimeout,
    "NotAvailable": ServiceUnavailable,
}


def _error_for(service, method, error):
    """The exception a failed call raises, from the host's `call-error` case."""
    case = type(error).__name__.removeprefix("CallError_")
    if case == "RpcError":
        failure = error.value
        return RpcError(failure.message, service, method, failure.code, json.loads(failure.data_json))
    raised_as = _RAISED_AS.get(case, ServiceUnavailable)
    return raised_as(error.value, service, method)


class Request:
    """A service call not made yet: `services.weather.forecast.request(city="Ghent")`.
    Pass several to `services.gather` to make them at once."""

    __slots__ = ("service", "method", "params", "line")

    def __init__(self, service, method, params, line):
        self.service = service
        self.method = method
        self.params = params
        self.line = line

    def __repr__(self):
        return f"<request {self.service}.{self.method}>"


class _Method:
    __slots__ = ("_service", "_method")

    def __init__(self, service, method):
        self._service = service
        self._method = method

    def __call__(self, **params):
        ok, value = _host.rpc_call(self._service, self._method, params, _errors.caller_line())
        if ok:
            return value
        raise _error_for(self._service, self._method, value)

    def request(self, **params):
        """This call with these parameters, for `services.gather`; nothing is sent yet."""
        return Request(self._service, self._method, params, _errors.caller_line())

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
    UnknownMethod = UnknownMethod
    PermissionDenied = PermissionDenied
    InvalidParams = InvalidParams

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Service(name)

    def call(self, service, method, **params):
        """Call `method` of `service` by name, for names that are not Python
        identifiers: `services.call("weather", "rpc.discover")`."""
        return _Method(service, method)(**params)

    def gather(self, *requests, return_exceptions=False):
        """Make several calls at once and return their results in order.

            a, b = services.gather(
                services.weather.forecast.request(city="Ghent"),
                services.weather.forecast.request(city="Oslo"),
            )

        The host makes the calls concurrently, each in its own `rpc` span. If a
        call fails, the first failure is raised once all have ended; with
        `return_exceptions=True` failures are returned in place instead.
        """
        for request in requests:
            if not isinstance(request, Request):
                raise TypeError("services.gather takes requests: services.<service>.<method>.request(**params)")
        answers = _host.rpc_gather([(r.service, r.method, r.params, r.line) for r in requests])
        results = []
        for request, (ok, value) in zip(requests, answers):
            if ok:
                results.append(value)
                continue
            error = _error_for(request.service, request.method, value)
            if not return_exceptions:
                raise error
            results.append(error)
        return results


services = _Services()
