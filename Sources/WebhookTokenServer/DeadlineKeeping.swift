import NIOCore

/// A handler whose connection has a ``ConnectionDeadline`` (the token and proxy sockets'): the
/// connection's coming and going and the end of each read reach the deadline through these
/// defaults. A handler with more to do when its connection goes calls `deadline.channelInactive()`
/// itself.
protocol DeadlineKeeping: ChannelInboundHandler {
    var deadline: ConnectionDeadline { get }
}

extension DeadlineKeeping {
    func handlerAdded(context: ChannelHandlerContext) {
        deadline.handlerAdded(context: context)
    }

    func channelActive(context: ChannelHandlerContext) {
        deadline.channelActive(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline.channelInactive()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline.handlerRemoved()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        deadline.readCompleted()
        context.fireChannelReadComplete()
    }
}
