module github.com/smartretry/smartretry/bindings/go

go 1.24
