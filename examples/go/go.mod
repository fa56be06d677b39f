module github.com/smartretry/smartretry/examples/go

go 1.24

require github.com/smartretry/smartretry/bindings/go v0.0.0

replace github.com/smartretry/smartretry/bindings/go => ../../bindings/go
