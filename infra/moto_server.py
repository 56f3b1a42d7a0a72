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
  included) for each message received.

Everything else is moto's own behaviour.
"""
import sys
import time

from moto.sqs import models
from moto.sqs.exceptions import ReceiptHandleIsInvalid

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


models.unix_time = unix_time
models.unix_time_millis = unix_time_millis
models.SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period
models.Queue.delete_message = delete_message
models.Queue.messages = property(visible_messages)

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())
