/// Section addressing (RFC 9051 §6.4.5): which bytes BODY[section] and BINARY[section] return.
extension MessagePart {
    /// The byte range of `BODY[section]` (RFC 9051 §6.4.5), relative to `ParsedMessage.bytes`, or nil when the
    /// section does not exist (part number out of range, HEADER/TEXT of a part that is not message/rfc822, MIME on the
    /// top level, …). `part` is the section-part numbers ([] = top level). For HEADER.FIELDS(.NOT) return the range of
    /// the header to filter (the caller then calls `HeaderFilter.filter`).
    ///
    /// Call it on the root. Part numbers: a multipart's parts are numbered from 1; the parts of a message/rfc822 part
    /// are those of its encapsulated message; a message that is not multipart (top level or encapsulated) has one
    /// part, numbered 1, its body. `BODY[n]` is the part's body, `BODY[n.MIME]` its MIME header, and HEADER/TEXT after
    /// part numbers need a message/rfc822 (or message/global) part and address the message inside it.
    public func range(part: [Int], text: SectionText?) -> Range<Int>? {
        guard let target = resolve(part) else { return nil }
        switch (target.isMessage, text) {
        case (true, nil):
            return headerStart..<bodyEnd
        case (true, .header), (true, .headerFields), (true, .headerFieldsNot):
            return target.node.headerRange
        case (true, .text):
            return target.node.bodyRange
        case (true, .mime):
            return nil
        case (false, nil):
            return target.node.bodyRange
        case (false, .mime):
            return target.node.headerRange
        case (false, .header), (false, .headerFields), (false, .headerFieldsNot):
            guard target.node.isEncapsulatedMessage, let message = target.node.children.first else { return nil }
            return message.headerRange
        case (false, .text):
            guard target.node.isEncapsulatedMessage, let message = target.node.children.first else { return nil }
            return message.bodyRange
        }
    }

    /// The part for BINARY[part] (RFC 9051 §6.4.5, RFC 3516): nil when it does not exist or is a multipart.
    /// RFC 9051 asks for leaf parts only; a message/rfc822 part is served with its encapsulated message as the
    /// content, as Dovecot does. `BINARY[]` (no part) is nil too: the server serves the whole message as BODY[].
    public func binaryPart(_ part: [Int]) -> MessagePart? {
        guard !part.isEmpty, let target = resolve(part), !target.isMessage else { return nil }
        guard !target.node.isMultipart, target.node.type != "multipart" else { return nil }
        return target.node
    }

    /// Walks the section-part numbers from this (root) message. `isMessage` is true only for `[]`, which names the
    /// message itself rather than one of its parts.
    private func resolve(_ numbers: [Int]) -> (node: MessagePart, isMessage: Bool)? {
        var node = self
        var isMessage = true
        for number in numbers {
            if !isMessage, node.isEncapsulatedMessage, let message = node.children.first {
                node = message
                isMessage = true
            }
            if node.isMultipart {
                guard number >= 1, number <= node.children.count else { return nil }
                node = node.children[number - 1]
            } else if isMessage {
                // A message that is not multipart has one part: its body.
                guard number == 1 else { return nil }
            } else {
                return nil
            }
            isMessage = false
        }
        return (node, isMessage)
    }
}
