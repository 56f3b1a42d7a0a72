"""
Starts moto's server (the pinned PyPI release) with fixes to its SQS queue:

- a delete rebuilds the message list under the lock that a send takes; moto
  rebuilds and assigns it without, so a message sent by another request
  thread meanwhile was silently lost (we lost 5 of 20,000 under load);
- the cost of queue operations, which otherwise grows with the backlog fast
  enough to cap a local queue at a few dozen messages a second: the time is
  read with time.time() instead of building datetimes, the visible messages
  are listed with one clock reading, and the retention check reads the
  retention period instead of computing every queue attribute (backlog counts
  included) for each message received; a send, which reads every attribute
  only to learn whether the queue deduplicates by content, skips the three
  backlog counts (each a pass over the queue);
- which backend a request is for is worked out once per host: moto lists its
  own package directory (some 180 stat calls) under a global lock on every request;
- werkzeug's line per request is not written: at a few hundred requests a
  second that logging alone took a sixth of the server's CPU. Exceptions are
  still logged; the errors moto answers (QueueDoesNotExist, say) are only in
  the clients' logs.

Everything else is moto's own behaviour.
"""
import sys
import threading
import time

from moto import backends
from moto.moto_server import werkzeug_app
from moto.sqs import models
from moto.sqs.exceptions import ReceiptHandleIsInvalid
from werkzeug import serving

_unix_time = models.unix_time


def unix_time(dt=None):
    return time.time() if dt is None else _unix_time(dt)


def unix_time_millis(dt=None):
    return unix_time(dt) * 1000.0


def is_message_valid_based_on_retention_period(self, queue_name, message):
    queue = self.get_queue(queue_name)
    return int(queue.message_retention_period) + message.sent_timestamp / 1000 > time.time()


def delete_message(self, receipt_handle):
    if receipt_handle in self.deleted_messages:
        return
    # Copy-on-write as moto does, so a request thread looping over the old list skips nothing, but under
    # the lock add_message takes, so a message sent meanwhile is not dropped by the assignment.
    with self._messages_lock:
        for message in self._messages:
            if message.had_receipt_handle(receipt_handle):
                self.pending_messages.discard(message)
                self.deleted_messages.update(message.all_receipt_handles)
                self._messages = [other for other in self._messages if other is not message]
                return
    raise ReceiptHandleIsInvalid()


def visible_messages(self):
    now = time.time() * 1000.0
    return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]


_sending = threading.local()
_send_message = models.SQSBackend.send_message


def send_message(self, *args, **kwargs):
    outer = getattr(_sending, "active", False)
    _sending.active = True
    try:
        return _send_message(self, *args, **kwargs)
    finally:
        _sending.active = outer


def counted_only_outside_a_send(count):
    return property(lambda self: 0 if getattr(_sending, "active", False) else count.fget(self))


_moto_modules = tuple(backends.list_of_moto_modules())
_backend_of_host = {}
_get_backend_for_host = werkzeug_app.DomainDispatcherApplication.get_backend_for_host


def get_backend_for_host(self, host):
    if host in _backend_of_host:
        return _backend_of_host[host]
    backend = _get_backend_for_host(self, host)
    # Bounded: the hosts a local server sees are a handful of service endpoints.
    if len(_backend_of_host) < 1000:
        _backend_of_host[host] = backend
    return backend


models.unix_time = unix_time
models.unix_time_millis = unix_time_millis
models.SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period
models.Queue.delete_message = delete_message
models.Queue.messages = property(visible_messages)
models.SQSBackend.send_message = send_message
for _count in (
    "approximate_number_of_messages",
    "approximate_number_of_messages_delayed",
    "approximate_number_of_messages_not_visible",
):
    setattr(models.Queue, _count, counted_only_outside_a_send(getattr(models.Queue, _count)))
backends.list_of_moto_modules = lambda: _moto_modules
werkzeug_app.DomainDispatcherApplication.get_backend_for_host = get_backend_for_host
serving.WSGIRequestHandler.log_request = lambda self, code="-", size="-": None

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())
