"""The published recipes: `localgrad-train --config=paper/<name>:<variant>`."""
