"""The local stack: real Kafka, Redis, Prometheus, Alertmanager (and kube-apiserver) as plain processes."""
