"""Analytics: the rollup of events into KPI counts, insights, alerts and simulated traffic."""
