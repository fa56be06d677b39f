module github.com/smartretry/smartretry/bindings/go/bench

go 1.24

require github.com/smartretry/smartretry/bindings/go v0.0.0

require github.com/cenkalti/backoff/v5 v5.0.3

replace github.com/smartretry/smartretry/bindings/go => ../
