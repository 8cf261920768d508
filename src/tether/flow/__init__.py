"""What a flow is: templates, captures, cookies and data rows, as pure data."""
