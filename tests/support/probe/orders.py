from orders_svc.orders.handlers import registry as real
from tests.support.probe.handlers import with_probe

registry = with_probe(real)
