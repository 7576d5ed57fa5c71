"""driftline's flows. Import a flow from its module (``from flows.train import train``)."""
