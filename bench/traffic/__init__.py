"""The traffic model and detection benchmark (issue 4, "Evaluation").

Public API::

    traffic = model.generate(model.Scenario(seed=1, subscribers=2000, days=3.0, start=T))
    results = await inprocess.evaluate(traffic, reputation=ReputationConfig())  # virtual time
    m = metrics.compute(results)            # recall/precision, wrongful rates, campaigns
    m, info = await oversip.run_over_sip(traffic, duration=120.0)  # through `spitwall serve`
    scenarios.SCENARIOS / scenarios.CONFIGS / scenarios.reputation_config(name)

Modules: ``model`` (the seeded call mix), ``carriers`` (test STI PKI, one signing
certificate per originating network, x5u over HTTPS on 127.0.0.1), ``inprocess`` (the
production CallScreener on virtual time), ``metrics`` (definitions), ``agents`` (Python
UAC/UAS over UDP), ``oversip`` (the same calls through a running ``spitwall serve``),
``scenarios``, ``report``; ``python -m bench.traffic`` runs it all.
"""
