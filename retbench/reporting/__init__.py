"""What a run leaves behind: RunRecords and TREC runs, secret redaction, the Markdown
leaderboards and the static site."""
