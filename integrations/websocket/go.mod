module github.com/starsessions/sessions/integrations/websocket

go 1.26.0

require (
	github.com/coder/websocket v1.8.15
	github.com/starsessions/sessions v0.0.0
	github.com/starsessions/sessions/internal/testbrowser v0.0.0
)

require (
	github.com/go-rod/rod v0.116.2 // indirect
	github.com/vmihailenco/msgpack/v5 v5.4.1 // indirect
	github.com/vmihailenco/tagparser/v2 v2.0.0 // indirect
	github.com/ysmood/fetchup v0.2.3 // indirect
	github.com/ysmood/goob v0.4.0 // indirect
	github.com/ysmood/got v0.40.0 // indirect
	github.com/ysmood/gson v0.7.3 // indirect
	github.com/ysmood/leakless v0.9.0 // indirect
)

replace (
	github.com/starsessions/sessions => ../../
	github.com/starsessions/sessions/internal/testbrowser => ../../internal/testbrowser
)
