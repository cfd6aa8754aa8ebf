/// The ENVELOPE of a message (RFC 9051 §7.5.2), taken from its header.
///
/// Date, Subject, In-Reply-To and Message-ID are the raw values, unfolded and trimmed, encoded words not decoded (the
/// RFC says so); NIL when the field is missing. As in Dovecot, the last of several such fields wins, and several
/// address fields of one kind are merged as if they were one comma-separated list (so a second From cannot hide
/// behind the first).
struct MessageEnvelope: Sendable {
    var date: [UInt8]?
    var subject: [UInt8]?
    var from: [AddressItem]
    var sender: [AddressItem]
    var replyTo: [AddressItem]
    var to: [AddressItem]
    var cc: [AddressItem]
    var bcc: [AddressItem]
    var inReplyTo: [UInt8]?
    var messageID: [UInt8]?

    init(_ header: HeaderBlock) {
        func addresses(_ name: String) -> [AddressItem] {
            header.all(name).flatMap { AddressList.parse(header.unfoldedValue($0)) }
        }
        date = header.unfoldedValue(of: "date")
        subject = header.unfoldedValue(of: "subject")
        from = addresses("from")
        sender = addresses("sender")
        replyTo = addresses("reply-to")
        to = addresses("to")
        cc = addresses("cc")
        bcc = addresses("bcc")
        inReplyTo = header.unfoldedValue(of: "in-reply-to")
        messageID = header.unfoldedValue(of: "message-id")
    }

    /// `"(" env-date SP env-subject SP env-from SP env-sender SP env-reply-to SP env-to SP env-cc SP env-bcc SP
    /// env-in-reply-to SP env-message-id ")"`. A Sender or Reply-To that is missing or has no address is the From
    /// list (RFC 9051 §7.5.2).
    func write(to out: inout [UInt8]) {
        out.append(UInt8(ascii: "("))
        WireString.appendMessageValue(date, to: &out)
        out.append(MessageBytes.space)
        WireString.appendMessageValue(subject, to: &out)
        for list in [from, sender.isEmpty ? from : sender, replyTo.isEmpty ? from : replyTo, to, cc, bcc] {
            out.append(MessageBytes.space)
            Self.write(list, to: &out)
        }
        out.append(MessageBytes.space)
        WireString.appendMessageValue(inReplyTo, to: &out)
        out.append(MessageBytes.space)
        WireString.appendMessageValue(messageID, to: &out)
        out.append(UInt8(ascii: ")"))
    }

    /// `"(" 1*address ")" / nil`, with `address = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")"`.
    ///
    /// A group is framed by `(NIL NIL "name" NIL)` and `(NIL NIL NIL NIL)`. A mailbox never gets a NIL host, which
    /// would read as group syntax: a missing local part or domain is written as Dovecot writes it,
    /// `MISSING_MAILBOX` / `MISSING_DOMAIN` (UW-IMAP used `.MISSING-HOST-NAME.`).
    static func write(_ list: [AddressItem], to out: inout [UInt8]) {
        if list.isEmpty {
            out.append(contentsOf: "NIL".utf8)
            return
        }
        out.append(UInt8(ascii: "("))
        for item in list {
            switch item {
            case .mailbox(let name, let route, let local, let domain):
                out.append(UInt8(ascii: "("))
                WireString.appendMessageValue(name, to: &out)
                out.append(MessageBytes.space)
                WireString.appendMessageValue(route, to: &out)
                out.append(MessageBytes.space)
                WireString.appendMessageValue(local ?? Array("MISSING_MAILBOX".utf8), to: &out)
                out.append(MessageBytes.space)
                let host = domain.flatMap { $0.isEmpty ? nil : $0 } ?? Array("MISSING_DOMAIN".utf8)
                WireString.appendMessageValue(host, to: &out)
                out.append(UInt8(ascii: ")"))
            case .groupStart(let name):
                out.append(contentsOf: "(NIL NIL ".utf8)
                WireString.appendMessageValue(name, to: &out)
                out.append(contentsOf: " NIL)".utf8)
            case .groupEnd:
                out.append(contentsOf: "(NIL NIL NIL NIL)".utf8)
            }
        }
        out.append(UInt8(ascii: ")"))
    }
}
