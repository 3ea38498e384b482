"""The chat REPL behind `plastic chat`: session (turns), slash commands, input and rendering."""
