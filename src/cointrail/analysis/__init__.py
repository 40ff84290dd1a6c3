"""Analysis of decoded chain data: address clustering, attribution, tracing."""
