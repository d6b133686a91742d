module github.com/chatstate/chatstate

go 1.26

require github.com/redis/rueidis v1.0.79

require golang.org/x/sys v0.47.0 // indirect

require (
	github.com/alicebob/miniredis/v2 v2.40.0
	github.com/yuin/gopher-lua v1.1.1 // indirect
)

require github.com/gorilla/websocket v1.5.3
