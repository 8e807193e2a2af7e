from listwarden.cli import main

main()
