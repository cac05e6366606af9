"""The exceptions of `requests` that verifiers catch."""


class RequestException(IOError):
    def __init__(self, *args, response=None, request=None, **kwargs):
        super().__init__(*args)
        self.response = response
        self.request = request


class HTTPError(RequestException):
    pass


class ConnectionError(RequestException):
    pass


class Timeout(RequestException):
    pass


class ConnectTimeout(ConnectionError, Timeout):
    pass


class ReadTimeout(Timeout):
    pass


class URLRequired(RequestException):
    pass


class InvalidURL(RequestException, ValueError):
    pass


class TooManyRedirects(RequestException):
    pass
