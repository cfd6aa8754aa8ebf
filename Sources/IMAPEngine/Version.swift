/// MailHost's version, as `mailhost --version` and `mailadmin --version` print it.
public enum MailHostVersion {
    public static let current = "0.13.0"
}
